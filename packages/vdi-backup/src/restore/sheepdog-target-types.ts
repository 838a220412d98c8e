export interface SheepdogRestoreTarget {
  type: 'sheepdog';
  /** `sheepdog://host:port/vdiname`. */
  url: string;
  /** The base snapshot: an id if all digits, else a tag (as dog's `-s`). */
  snapshot: string;
  /**
   * The working VDI is replaced, as `dog vdi restore` does; when it holds writes that are
   * in no snapshot, they would be lost: refused unless this is true.
   */
  discardWorkingChanges?: boolean | undefined;
}
