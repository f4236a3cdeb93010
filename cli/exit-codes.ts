// The CLI's exit statuses, one table for every command: 0 done, 1 error, 2 rolled back (the pair is safe, but
// nothing moved), 130 stopped by Ctrl-C (128 + SIGINT, as shells report it).

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_ROLLED_BACK = 2;
export const EXIT_INTERRUPTED = 130;
