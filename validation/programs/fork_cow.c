/* The parent writes every page of 16 MiB of private anonymous memory, then forks two
 * children one after the other; each writes every page (a copy-on-write copy each)
 * and exits; the parent waits for each before forking the next. */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (16UL << 20)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (unsigned long off = 0; off < SIZE; off += page)
        p[off] = 1;
    for (int child = 0; child < 2; child++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            for (unsigned long off = 0; off < SIZE; off += page)
                p[off] = (char)(child + 2);
            _exit(0);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 1;
    }
    return p[0] != 1;
}
