/* Mappings that hold no descriptor, and their syncs: a consume-queue file is mapped, its
 * descriptor closed, and the mapping alone keeps the file (mmap(2) stays valid after
 * close(2)), so the number of queues is bounded by the mappings a process may hold, not by
 * `ulimit -n`. msync(MS_SYNC) makes a range durable through the mapping (Linux runs
 * vfs_fsync_range with datasync for it), so a sync needs no descriptor either. */
#include "rmq_native.h"
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

uint8_t *rmq_map(int32_t fd, int64_t size, int32_t *err) {
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        *err = errno;
        return NULL;
    }
    /* No read-around on a fault: the kernel's (read_ahead_kb, 8 MiB on some disks) would read
     * a whole 6 MB queue file, zeros and all, at a queue's first unit (1.2 ms and 6 MB of page
     * cache per queue, measured); an in-order read asks for its units itself
     * (rmq_readahead_queue). */
    madvise(p, (size_t)size, MADV_RANDOM);
    *err = 0;
    return p;
}

int32_t rmq_unmap(uint8_t *addr, int64_t size) {
    return munmap(addr, (size_t)size) == 0 ? 0 : errno;
}

int32_t rmq_msync(uint8_t *addr, int64_t start, int64_t len) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    int64_t aligned = start - start % page;
    len += start - aligned;
    if (len <= 0) return 0;
    return msync(addr + aligned, (size_t)len, MS_SYNC) == 0 ? 0 : errno;
}

int32_t rmq_syncfs(int32_t fd) {
    return syncfs(fd) == 0 ? 0 : errno;
}
