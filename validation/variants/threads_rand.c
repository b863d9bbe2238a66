/* two threads each do 80,000 random read-modify-writes over their own 20 MiB */
#include <pthread.h>
#include <stdlib.h>
static void *work(void *arg) {
    unsigned long n = 20UL << 20, pages = n >> 12, x = (unsigned long)arg;
    volatile char *p = malloc(n);
    if (!p) return 0;
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 1;
    for (int i = 0; i < 80000; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        p[((x >> 33) % pages) << 12] += 1;
    }
    return (void *)p;
}
int main(void) {
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        if (pthread_create(&t[i], 0, work, (void *)(i + 7)) != 0) return 1;
    for (int i = 0; i < 2; i++) pthread_join(t[i], 0);
    return 0;
}
