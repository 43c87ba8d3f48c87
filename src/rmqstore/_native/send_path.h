/* What send_path.c (SendPath: one frame per call) and send_read.c (SendPath.serve: every
 * frame of a read in one call) share inside the _send C-API module. */
#ifndef RMQ_SEND_PATH_H
#define RMQ_SEND_PATH_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include "rmq_internal.h"
#include "rmq_native.h"
#include "targets.h"

typedef int32_t (*parse_fn)(const uint8_t *, int64_t, const char *, int32_t, const char *,
                            int32_t, rmq_send_req *, uint8_t *, int32_t);
typedef int64_t (*put_fn)(rmq_log *, rmq_queue *, const char *, int32_t, const char *, int32_t,
                          int64_t, int32_t, int32_t, int64_t, int32_t, int64_t, const char *);
typedef int32_t (*index_put_fn)(uint8_t *, int32_t, int32_t, const char *, size_t, int64_t,
                                int64_t);

enum { PIECES = 5 };  /* the answer's text around msgId, queueId, queueOffset and opaque */

/* What serve reads of the broker and the store, set once by bind_fast (see send_read.c). */
typedef struct {
    PyObject *table;      /* dict: topic -> how many queue ids a fast send may name */
    PyObject *targets;    /* the store writer's dict: topic -> Targets */
    PyObject *targets_type; /* _put.Targets, whose slots serve reads (targets.h) */
    PyObject *putter;     /* the writer's Putter: refusing, waiters, on_append */
    PyObject *acquire, *release, *notify_all;  /* the put lock's, its Condition's */
    PyObject *index;      /* IndexService or None */
    PyObject *locate;     /* IndexFile -> (address, slots, entries) */
    PyObject *commit;     /* the store's GroupCommit: cued as put_sent cues it */
    PyObject *store_host; /* bytes: msgId's first part */
    PyObject *index_file; /* the IndexFile idx points into (a new reference), or NULL */
    PyObject *last_topic; /* the str of the last topic served: its hash kept for the next */
    uint8_t *idx;
    int32_t slots, entries;
    rmq_log *log;
    int64_t plain_limit;
    int durable_waits;    /* sync flush or a sync master: a read of sends with WAIT is held */
    uint8_t *answers;     /* the answers of one read, gathered */
    Py_ssize_t answers_cap;
    uint8_t *held;        /* a waiting read's sends, HELD_ITEM bytes each (send_read.c) */
    Py_ssize_t held_cap;
} fast_state;

/* The traffic counters and RPC latencies of the sends serve takes, kept in buffers Python
 * folds into stats/traffic.py's Traffic and metrics/rpc.py's RpcLatency when they are read
 * (layouts: send_counts.c). */
#define COUNT_BOUNDS 16
typedef struct {
    PyObject *topics;   /* dict: topic -> bytearray (a topic's counters), or NULL: not counted */
    PyObject *rpc;      /* bytearray: SEND_MESSAGE's and V2's latencies, or NULL */
    double size_bounds[COUNT_BOUNDS], rpc_bounds[COUNT_BOUNDS];
    int n_size, n_rpc;
} send_counts;

typedef struct {
    PyObject_HEAD
    parse_fn parse;
    PyObject *cluster;  /* bytes */
    PyObject *skip;     /* bytes: names each followed by '\n' */
    PyObject *pieces[PIECES];  /* bytes */
    uint8_t *out;       /* the parse's scratch */
    int32_t cap;
    rmq_send_req req;
    fast_state fast;    /* bound: fast.table != NULL */
    send_counts counts; /* send_counts.c's: what serve counts of the sends it takes */
    /* moved by bump_epoch whenever what a ReadFront was armed with may no longer hold */
    unsigned long long epoch;
    long long front_served; /* sends served through ReadFronts (send_front.c) */
} SendPathObject;

extern PyTypeObject *rmq_send_path_type;  /* SendPath, made at the module's init */

extern put_fn rmq_sent_put;              /* rmq_put, bound once by bind */
extern index_put_fn rmq_sent_index_put;  /* rmq_index_put, likewise */

/* A producer's address as records hold it (bytes of 8 or 20, or None for the store's own):
 * *host (NULL for None) and the sysflag bit it sets. 0, or -1 with ValueError. */
int rmq_born_host(PyObject *given, const char **host, int32_t *sysflag);

/* The SUCCESS frame of a stored send, written at w (NULL: only measured): its length. */
Py_ssize_t rmq_answer_write(PyObject *const *pieces, uint8_t *w, const uint8_t *host,
                            Py_ssize_t host_len, long opaque, long long phys, long queue_id,
                            long long qoff);

/* send_read.c's methods of SendPath, and what dealloc and the GC see of fast_state. */
PyObject *rmq_send_bind_fast(SendPathObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *rmq_send_serve(SendPathObject *self, PyObject *const *args, Py_ssize_t nargs);
int rmq_fast_traverse(fast_state *f, visitproc visit, void *arg);

/* send_counts.c: SendPath.count_into, and serve's counting of one send and of one read. */
PyObject *rmq_send_count_into(SendPathObject *self, PyObject *const *args, Py_ssize_t nargs);
int rmq_count_send(send_counts *c, PyObject *topic, int64_t body_len);
void rmq_count_rpc(send_counts *c, Py_ssize_t v1, Py_ssize_t v2, double ms);
double rmq_count_clock(void);

/* send_front.c: adds ReadFront to the module. 0, or -1 with an error set. */
int rmq_front_add(PyObject *module);
void rmq_fast_clear(fast_state *f);

#endif
