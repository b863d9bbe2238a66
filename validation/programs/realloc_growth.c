/* Grows one block by 256 KiB two hundred times with realloc (mremap past the mmap
 * threshold), writing each new part. */
#include <stdlib.h>
#include <string.h>

int main(void) {
    char *p = 0;
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        n += 256 << 10;
        char *q = realloc(p, n);
        if (!q) return 1;
        p = q;
        memset(p + n - (256 << 10), i, 256 << 10);
    }
    free(p);
    return 0;
}
