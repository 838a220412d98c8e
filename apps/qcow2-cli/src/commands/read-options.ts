import { type Command, Option } from 'commander';

/** `--backing allow|deny|ignore`, shared by the commands that read images. */
export function backingOption(): Option {
  return new Option(
    '--backing <policy>',
    'may the image make us open the files it names (backing files, data file): allow, deny, or ignore the backing file',
  )
    .choices(['allow', 'deny', 'ignore'])
    .default('allow');
}

export function addExamples(command: Command, examples: string[]): Command {
  return command.addHelpText(
    'after',
    `\nExamples:\n${examples.map((line) => `  ${line}`).join('\n')}\n`,
  );
}
