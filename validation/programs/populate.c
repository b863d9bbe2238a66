/* Memory the kernel faults in on the program's behalf (get_user_pages): 16 MiB
 * each of anonymous memory mapped with MAP_POPULATE (read-write, then written:
 * no more faults; read-only, then read), MADV_POPULATE_WRITE, mlock, and the file
 * named by argv[1] mapped with MAP_POPULATE and again with MADV_POPULATE_READ.
 * Linux counts every such fault in the program's minflt. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: populate FILE\n");
        return 2;
    }
    size_t n = 16 << 20;
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    char *q = mmap(0, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    char *r = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *t = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || q == MAP_FAILED || r == MAP_FAILED || t == MAP_FAILED) return 1;
    volatile char sum = 0;
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    for (size_t i = 0; i < n; i += 4096) sum += q[i];
    if (madvise(r, n, MADV_POPULATE_WRITE) != 0) { perror("madvise"); return 1; }
    if (mlock(t, n) != 0) { perror("mlock"); return 1; }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
    char *f = mmap(0, st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    char *g = mmap(0, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (f == MAP_FAILED || g == MAP_FAILED) return 1;
    if (madvise(g, st.st_size, MADV_POPULATE_READ) != 0) { perror("madvise"); return 1; }
    return sum + f[0] + g[0] == 0 ? 0 : 0;
}
