/* argv: MIB. The parent writes every page of MIB MiB of private anonymous memory and
 * forks three children; child i writes every page of its third (copy-on-write), then
 * reads every page. With SEQ set in the environment each child is waited for before
 * the next is forked; without it the three run together. The parent then writes
 * every page again. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: fork3 MIB\n"); return 2; }
    unsigned long size = strtoul(argv[1], NULL, 0) << 20;
    long page = sysconf(_SC_PAGESIZE);
    int seq = getenv("SEQ") != NULL;
    volatile char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (unsigned long off = 0; off < size; off += page)
        p[off] = 1;
    for (int c = 0; c < 3; c++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            unsigned long a = size / 3 * c, b = a + size / 3;
            long sum = 0;
            for (unsigned long off = a; off < b; off += page)
                p[off] = 2;
            for (unsigned long off = 0; off < size; off += page)
                sum += p[off];
            _exit(sum == 0);
        }
        if (seq && waitpid(pid, NULL, 0) != pid) { perror("waitpid"); return 1; }
    }
    int status;
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    for (unsigned long off = 0; off < size; off += page)
        p[off] = 3;
    return 0;
}
