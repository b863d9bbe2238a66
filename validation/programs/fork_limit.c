/* A parent writes 48 MiB, forks a child that writes every page (copy-on-write of
 * pages partly in swap), waits, then reads every page back; under a 32 MiB limit. */
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    size_t n = 48UL << 20;
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    pid_t c = fork();
    if (c < 0) return 1;
    if (c == 0) {
        for (size_t i = 0; i < n; i += 4096) p[i] = 2;
        _exit(0);
    }
    waitpid(c, 0, 0);
    long s = 0;
    for (size_t i = 0; i < n; i += 4096) s += p[i];
    return s != (long)(n / 4096);
}
