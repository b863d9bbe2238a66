/* A 12 MiB hot set of anonymous memory read and written after every 1 MiB of a
 * 48 MiB cold region, which is swept three times (each sweep writes one byte a
 * page: zeros the first time). Under a 40 MiB limit the hot pages stay and the cold
 * ones cycle through swap; the hot pages a sweep's reclaim writes out come back from
 * the swap cache before their writes are done, so how long swap writes take decides
 * how many are read back from swap. */
#include <stdlib.h>
#include <string.h>

int main(void) {
    size_t hot = 12u << 20, cold = 48u << 20;
    char *h = malloc(hot), *c = malloc(cold);
    if (!h || !c)
        return 1;
    memset(h, 1, hot);
    unsigned long s = 0;
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < cold; i += 4096) {
            c[i] = (char)r;
            if ((i & ((1 << 20) - 1)) == 0)
                for (size_t j = 0; j < hot; j += 4096)
                    s += h[j]++;
        }
    }
    return s == 0;
}
