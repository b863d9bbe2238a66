/* the parent writes 40 MiB, two children in turn read all of it and write a quarter,
 * then the parent writes it all again */
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    unsigned long n = 40UL << 20;
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 1;
    for (int c = 0; c < 2; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            unsigned long s = 0;
            for (unsigned long i = 0; i < n; i += 4096) s += p[i];
            for (unsigned long i = 0; i < n / 4; i += 4096) p[i] = 3;
            _exit((int)(s & 0));
        }
        int st;
        waitpid(pid, &st, 0);
    }
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 2;
    return 0;
}
