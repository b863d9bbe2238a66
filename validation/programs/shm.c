/* 8 MiB of shared anonymous memory (MAP_SHARED | MAP_ANONYMOUS): the parent writes
 * every page, forks a child that writes every page and exits, waits for it, then
 * writes every page again and checks it saw the child's writes. */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (8UL << 20)

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (unsigned long off = 0; off < SIZE; off += page)
        p[off] = 1;
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        for (unsigned long off = 0; off < SIZE; off += page)
            p[off] = 2;
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    int bad = 0;
    for (unsigned long off = 0; off < SIZE; off += page) {
        bad |= p[off] != 2;
        p[off] = 3;
    }
    return bad;
}
