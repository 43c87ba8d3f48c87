/* Page and block management of segment files: pre-faulting off the hot path (as RocketMQ's
 * warmMapedFileEnable does; only MADV_POPULATE_WRITE, which never changes content, so it is
 * safe beside a writer), and zeroing a tail without touching its pages. */
#include "rmq_native.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

int32_t rmq_populate(uint8_t *addr, size_t start, size_t len) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    size_t aligned = start - start % (size_t)page;
    len += start - aligned;
    if (len == 0) return 0;
    return madvise(addr + aligned, len, MADV_POPULATE_WRITE) == 0 ? 0 : errno;
}

int32_t rmq_punch_hole(int32_t fd, int64_t start, int64_t len) {
    if (len <= 0) return 0;
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, len) == 0 ? 0 : errno;
}

int32_t rmq_zero_range(int32_t fd, int64_t start, int64_t len) {
    if (len <= 0) return 0;
    if (rmq_punch_hole(fd, start, len) != 0) return -1;
    return fallocate(fd, 0, start, len) == 0 ? 0 : -1;
}
