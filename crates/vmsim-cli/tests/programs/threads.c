/* Four threads, each mapping, touching and unmapping 64 KiB twenty times, while the
 * main thread writes a shared array. */
#include <pthread.h>
#include <sys/mman.h>

static char shared[1 << 20];

static void *work(void *arg) {
    long id = (long)arg;
    for (int r = 0; r < 20; r++) {
        char *p = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        for (int i = 0; i < (1 << 16); i += 4096) p[i] = (char)id;
        munmap(p, 1 << 16);
    }
    for (int i = 0; i < (1 << 20); i += 4096) shared[i] += (char)id;
    return 0;
}

int main(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, work, (void *)i);
    for (int i = 0; i < (1 << 20); i += 4096) shared[i] = 1;
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    return 0;
}
