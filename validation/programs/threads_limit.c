/* Two threads each allocate 32 MiB and add to every page twice, under a limit below
 * their 64 MiB: natively they run side by side on two CPUs, so both halves are in
 * use at once and the second pass swaps nearly all of it back in. */
#include <pthread.h>
#include <stdlib.h>

static void *work(void *arg) {
    (void)arg;
    volatile char *p = malloc(32 << 20);
    if (!p) return 0;
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < (32 << 20); i += 4096) p[i] += 1;
    return (void *)p;
}

int main(void) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], 0, work, 0) != 0) return 1;
    for (int i = 0; i < 2; i++) pthread_join(t[i], 0);
    return 0;
}
