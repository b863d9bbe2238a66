/* Files on tmpfs under a 32 MiB limit: a 12 MiB memfd filled with write() and read
 * back with read() twice, then a 40 MiB POSIX shared-memory object (shm_open, in
 * /dev/shm) written twice through a mapping by the parent and read by a forked
 * child. A tmpfs file's pages are swap-backed: Linux swaps them where a disk file's
 * would be written back and dropped. Both files live until the program ends. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    size_t m = 12 << 20;
    int mfd = memfd_create("vmsim-tmpfs-limit", 0);
    if (mfd < 0) { perror("memfd_create"); return 1; }
    static char buf[1 << 16];
    memset(buf, 3, sizeof buf);
    for (size_t i = 0; i < m; i += sizeof buf)
        if (write(mfd, buf, sizeof buf) != (ssize_t)sizeof buf) { perror("write"); return 1; }
    long total = 0;
    for (int pass = 0; pass < 2; pass++) {
        lseek(mfd, 0, SEEK_SET);
        ssize_t got;
        while ((got = read(mfd, buf, sizeof buf)) > 0) total += buf[0];
    }
    if (total != 2 * 3 * (long)(m / sizeof buf)) return 1;

    char name[64];
    snprintf(name, sizeof name, "/vmsim-tmpfs-limit-%d", (int)getpid());
    size_t n = 40 << 20;
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) { perror("shm_open"); return 1; }
    shm_unlink(name); /* the object lives while open or mapped */
    if (ftruncate(fd, n) != 0) { perror("ftruncate"); return 1; }
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i += 4096) p[i] = pass + 1;
    pid_t c = fork();
    if (c == 0) {
        volatile long sum = 0;
        for (size_t i = 0; i < n; i += 4096) sum += p[i];
        _exit(sum == 2 * (long)(n / 4096) ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
