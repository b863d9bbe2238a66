/* Reads a file with read() in 1 MiB chunks, dropping each chunk from the page cache
 * with posix_fadvise(POSIX_FADV_DONTNEED) after it is read, then reads the whole file
 * again without dropping: the second pass finds none of it cached. */
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 1;
    static char buf[1 << 20];
    for (int r = 0; r < 2; r++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) return 1;
        off_t off = 0;
        ssize_t got;
        while ((got = read(fd, buf, sizeof buf)) > 0) {
            if (r == 0) posix_fadvise(fd, off, got, POSIX_FADV_DONTNEED);
            off += got;
        }
        close(fd);
    }
    return 0;
}
