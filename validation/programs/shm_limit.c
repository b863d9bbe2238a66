/* 48 MiB of MAP_SHARED|MAP_ANONYMOUS memory written by the parent twice, then by a
 * forked child once, under a 32 MiB limit: shared memory is swap-backed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    size_t n = 48 << 20;
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i += 4096) p[i] = pass + 1;
    pid_t c = fork();
    if (c == 0) {
        for (size_t i = 0; i < n; i += 4096) p[i] = 7;
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    volatile long sum = 0;
    for (size_t i = 0; i < n; i += 4096) sum += p[i];
    return sum == 7 * (long)(n / 4096) ? 0 : 1;
}
