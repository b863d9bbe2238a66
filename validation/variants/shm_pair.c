/* 24 MiB of MAP_SHARED anonymous memory: a child writes it, the parent then writes
 * 24 MiB of its own and reads the shared memory */
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    unsigned long n = 24UL << 20;
    volatile char *s = mmap(0, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    volatile char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED || p == MAP_FAILED) return 1;
    pid_t pid = fork();
    if (pid == 0) { for (unsigned long i = 0; i < n; i += 4096) s[i] = 5; _exit(0); }
    int st; waitpid(pid, &st, 0);
    unsigned long t = 0;
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 1;
    for (unsigned long i = 0; i < n; i += 4096) t += s[i];
    return (int)(t == 3);
}
