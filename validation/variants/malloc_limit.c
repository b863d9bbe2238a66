/* malloc churn under a limit: 2,000 blocks of 4 KiB to 60 KiB written whole, every
 * third freed, then 200 blocks of 256 KiB (mmap'd) written, half freed, all read */
#include <stdlib.h>
#include <string.h>
static unsigned st = 99;
static unsigned nx(void) { st = st * 1103515245u + 12345u; return st >> 8; }
int main(void) {
    static char *a[2000], *b[200];
    unsigned long s = 0;
    for (int i = 0; i < 2000; i++) { size_t z = 4096 + (nx() % 15) * 4096; a[i] = malloc(z); memset(a[i], i, z); }
    for (int i = 0; i < 2000; i += 3) { free(a[i]); a[i] = 0; }
    for (int i = 0; i < 200; i++) { b[i] = malloc(256 << 10); memset(b[i], i, 256 << 10); }
    for (int i = 0; i < 200; i += 2) { free(b[i]); b[i] = 0; }
    for (int i = 0; i < 2000; i++) if (a[i]) s += a[i][100];
    for (int i = 0; i < 200; i++) if (b[i]) s += b[i][5000];
    return (int)(s == 7);
}
