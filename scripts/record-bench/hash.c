/* The recorder's CPU-bound benchmark: a hash table of 4 Mi slots (64 MiB of keys and
 * values), 3 million xorshift keys inserted or looked up with linear probing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t n = 1 << 22;
    uint64_t *keys = calloc(n, 8), *vals = calloc(n, 8);
    uint64_t x = 88172645463325252ull, sum = 0;
    if (!keys || !vals) return 1;
    for (int i = 0; i < 3000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t k = x % (n * 2) + 1;
        size_t h = (k * 0x9E3779B97F4A7C15ull) >> 42;
        while (keys[h] && keys[h] != k) h = (h + 1) & (n - 1);
        if (keys[h] == k)
            sum += vals[h];
        else if (i % 2 == 0) {
            keys[h] = k;
            vals[h] = i;
        }
    }
    printf("%lu\n", (unsigned long)sum);
    return 0;
}
