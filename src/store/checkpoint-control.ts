// The control word shared by the checkpointer and its worker thread (a
// SharedArrayBuffer of one Int32): the store asks the worker to stop, the worker confirms.
export const RUNNING = 0;
export const STOPPING = 1;
export const STOPPED = 2;
