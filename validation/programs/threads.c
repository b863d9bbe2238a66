/* Four threads each allocate 8 MiB and add to every page twice (read-modify-write
 * instructions). */
#include <pthread.h>
#include <stdlib.h>

static void *work(void *arg) {
    (void)arg;
    char *p = malloc(8 << 20);
    if (!p) return 0;
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < (8 << 20); i += 4096) p[i] += r;
    return p;
}

int main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], 0, work, 0) != 0) return 1;
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    return 0;
}
