/* Grows the heap by malloc to 80 MiB in 40 KiB blocks (below the mmap threshold, so
 * from the break), writes a byte of each, then frees them newest first, which lets
 * malloc shrink the break again. */
#include <stdio.h>
#include <stdlib.h>

#define BLOCKS 2048
#define BLOCK (40 << 10)

int main(void) {
    static char *b[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        b[i] = malloc(BLOCK);
        if (!b[i])
            return 1;
        b[i][0] = (char)i;
    }
    long s = 0;
    for (int i = BLOCKS - 1; i >= 0; i--) {
        s += b[i][0];
        free(b[i]);
    }
    printf("%ld\n", s);
    return 0;
}
