/* writes 16 MiB of heap, then forks and execs /bin/true ten times, one at a time */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    unsigned long n = 16UL << 20;
    volatile char *p = malloc(n);
    if (!p) return 1;
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 1;
    for (int k = 0; k < 10; k++) {
        pid_t c = fork();
        if (c < 0) return 1;
        if (c == 0) { execl("/bin/true", "true", (char *)0); _exit(127); }
        int st;
        if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) return 1;
        p[k << 12] += 1;
    }
    return 0;
}
