/* Pre-faulting segments off the hot path, as RocketMQ's warmMapedFileEnable does. Only
 * MADV_POPULATE_WRITE: it never changes content, so it is safe beside a writer. */
#include "rmq_native.h"
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
    return madvise(addr + aligned, len, MADV_POPULATE_WRITE) == 0 ? 0 : -1;
}
