/* A parent writes 4 MiB, then two forked children each write it again (copy-on-write),
 * and a grandchild of the first writes a quarter of it. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (4 << 20)

static void touch(char *p, size_t n, char v) {
    for (size_t i = 0; i < n; i += 4096) p[i] = v;
}

int main(void) {
    char *p = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    touch(p, SIZE, 1);
    for (int c = 0; c < 2; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            touch(p, SIZE, 2 + c);
            if (c == 0) {
                pid_t g = fork();
                if (g == 0) {
                    touch(p, SIZE / 4, 9);
                    _exit(0);
                }
                waitpid(g, 0, 0);
            }
            _exit(c + 3);
        }
    }
    int st, sum = 0;
    while (wait(&st) > 0) sum += WEXITSTATUS(st);
    return sum == 7 ? 0 : 1;
}
