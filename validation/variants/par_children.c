/* Four children run at once, each writing 12 MiB of its own anonymous memory and
 * then reading it back twice, while the parent waits: under a 32 MiB limit the
 * group's reclaim takes pages of all four. */
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    size_t n = 12UL << 20;
    for (int c = 0; c < 4; c++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) _exit(1);
            for (size_t i = 0; i < n; i += 4096) p[i] = (char)(c + 1);
            unsigned long s = 0;
            for (int r = 0; r < 2; r++)
                for (size_t i = 0; i < n; i += 4096) s += (unsigned char)p[i];
            _exit(s == 0);
        }
    }
    int st, bad = 0;
    while (wait(&st) > 0) bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    return bad;
}
