/** Exit codes shared by every blockkit CLI (DESIGN.md). `qcow2 check` has its own scheme. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;
/** The reader of standard output went away (`| head`): 128 + SIGPIPE, as a C tool would end. */
export const EXIT_SIGPIPE = 141;
