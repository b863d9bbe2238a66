/* Two threads: one spins while the other maps 64 KiB, writes each page and unmaps it,
 * 2,000 times. On a machine of two CPUs every munmap reaches the spinning thread's CPU
 * as a TLB shootdown interrupt. (The same program as docs/examples/shootdown.c.) */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
static volatile int stop;
static void *spin(void *a) { (void)a; unsigned long n = 0; while (!stop) n++; return (void *)n; }
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, spin, 0);
    for (int i = 0; i < 2000; i++) {
        char *p = mmap(0, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        for (int j = 0; j < 65536; j += 4096) p[j] = 1;
        munmap(p, 65536);
    }
    stop = 1;
    pthread_join(t, 0);
    struct rusage ru; getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "minflt %ld majflt %ld\n", ru.ru_minflt, ru.ru_majflt);
    return 0;
}
