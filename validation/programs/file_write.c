/* Writes argv[2] MiB to the file argv[1] with write() in 64 KiB pieces, syncs it, then
 * maps it and reads one byte of every page: the pages written are in the page cache,
 * so reading them back faults them in from there (fault-around), as far as the limit
 * left them. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: file_write FILE MIB\n");
        return 2;
    }
    long bytes = atol(argv[2]) << 20;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(argv[1]); return 1; }
    static char buf[65536];
    memset(buf, 'a', sizeof buf);
    for (long done = 0; done < bytes; done += sizeof buf)
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) { perror("write"); return 1; }
    if (fsync(fd) != 0) { perror("fsync"); return 1; }
    volatile const char *p = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    unsigned sum = 0;
    for (long off = 0; off < bytes; off += 4096) sum += (unsigned char)p[off];
    close(fd);
    unlink(argv[1]);
    return sum == 0;
}
