import { createOutputFile, type OutputFile, type OutputFileOptions } from '@x/blockio';

/**
 * createOutputFile, readable by its owner only (0600): backups and restored images hold
 * the disk's data, whoever else can read the directory.
 */
export async function privateOutputFile(
  path: string,
  options: OutputFileOptions,
): Promise<OutputFile> {
  const output = await createOutputFile(path, options);
  try {
    await output.device.handle.chmod(0o600);
  } catch (error) {
    await output.abort();
    throw error;
  }
  return output;
}
