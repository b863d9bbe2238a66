/* Maps the file named by argv[1] privately and read-only and reads one byte of
 * every page, three times over. With a second argument N, it sleeps N
 * microseconds after every MiB read (file_mmap_paced: the disk finishes each
 * readahead long before the reader gets there). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: file_mmap_reread FILE [PAUSE_US_PER_MIB]\n");
        return 2;
    }
    long pause_us = argc == 3 ? atol(argv[2]) : 0;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
    long page = sysconf(_SC_PAGESIZE);
    volatile const char *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    struct timespec pause = { pause_us / 1000000, (pause_us % 1000000) * 1000 };
    unsigned sum = 0;
    for (int pass = 0; pass < 3; pass++)
        for (off_t off = 0; off < st.st_size; off += page) {
            sum += (unsigned char)p[off];
            if (pause_us > 0 && (off + page) % (1 << 20) == 0) nanosleep(&pause, NULL);
        }
    return sum == 0;
}
