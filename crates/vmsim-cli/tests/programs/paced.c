/* Two threads, each writing every page of its own 16 MiB twice, while the main thread
 * waits for them: natively they run side by side on two CPUs. */
#include <pthread.h>
#include <stdlib.h>

static void *work(void *arg) {
    volatile char *p = malloc(16 << 20);
    for (int pass = 0; pass < 2; pass++)
        for (long i = 0; i < (16 << 20); i += 4096) p[i] += 1;
    return (void *)p;
}

int main(void) {
    pthread_t t[2];
    void *r[2];
    for (long i = 0; i < 2; i++) pthread_create(&t[i], 0, work, 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], &r[i]);
    return r[0] == r[1];
}
