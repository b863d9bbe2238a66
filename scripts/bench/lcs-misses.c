/* Exact hit and miss counts of one libCacheSim policy on an oracleGeneral trace, through
 * libCacheSim's library API (its `cachesim` prints the miss ratio to four places only),
 * object sizes ignored, so that the cache size is a number of pages:
 *
 *   lcs-misses TRACE lru|fifo|clock|arc|belady FRAMES      prints "REQUESTS MISSES"
 *
 * Built against a libCacheSim build by scripts/bench/vs-libcachesim.sh.
 */
#include <libCacheSim.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s TRACE lru|fifo|clock|arc|belady FRAMES\n", argv[0]);
        return 2;
    }
    reader_init_param_t rp = default_reader_init_params();
    rp.ignore_obj_size = true;
    reader_t *reader = open_trace(argv[1], ORACLE_GENERAL_TRACE, &rp);
    common_cache_params_t cp = default_common_cache_params();
    cp.cache_size = strtoll(argv[3], NULL, 10);
    cache_t *cache = NULL;
    if (strcmp(argv[2], "lru") == 0) cache = LRU_init(cp, NULL);
    else if (strcmp(argv[2], "fifo") == 0) cache = FIFO_init(cp, NULL);
    else if (strcmp(argv[2], "clock") == 0) cache = Clock_init(cp, NULL);
    else if (strcmp(argv[2], "arc") == 0) cache = ARC_init(cp, NULL);
    else if (strcmp(argv[2], "belady") == 0) cache = Belady_init(cp, NULL);
    if (cache == NULL) {
        fprintf(stderr, "lcs-misses: unknown policy %s\n", argv[2]);
        return 2;
    }
    request_t *req = new_request();
    unsigned long long n = 0, misses = 0;
    while (read_one_req(reader, req) == 0) {
        n++;
        if (!cache->get(cache, req)) misses++;
    }
    printf("%llu %llu\n", n, misses);
    free_request(req);
    cache->cache_free(cache);
    close_trace(reader);
    return 0;
}
