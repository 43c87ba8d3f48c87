/* What serve counts of the sends it takes, so that a read of them costs Python no call per
 * send: per topic the traffic counters (Traffic.stored's: messages, bytes, calls, the size
 * buckets) and per request code the RPC latencies of their SUCCESS answers (RpcLatency's).
 * They are kept in bytearrays Python reads and folds in whenever the figures are read
 * (stats/traffic.py's ServedFold, metrics/rpc.py's fold_served); the layouts, all native
 * little-endian 8-byte fields, are theirs too:
 *   a topic's:  messages, bytes, calls (int64), since (double, CLOCK_MONOTONIC seconds of the
 *               first send), counts[n_size + 1] (int64), total size (double);
 *   rpc:        for SEND_MESSAGE then SEND_MESSAGE_V2: counts[n_rpc + 1] (int64), total ms
 *               (double).
 * Only serve writes them (the loop's thread, the GIL held); a reader copies one at a time. */
#include <time.h>
#include "send_path.h"

static int bounds_of(PyObject *given, double *out, int *n) {
    Py_ssize_t len = PyTuple_Check(given) ? PyTuple_Size(given) : -1;
    if (len < 0 || len > COUNT_BOUNDS - 1) {
        PyErr_SetString(PyExc_ValueError, "bounds: a tuple of at most 15 floats");
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        out[i] = PyFloat_AsDouble(PyTuple_GetItem(given, i));
        if (out[i] == -1.0 && PyErr_Occurred()) return -1;
    }
    *n = (int)len;
    return 0;
}

/* count_into(topics: dict | None, size_bounds, rpc: bytearray | None, rpc_bounds): where
 * serve counts from now on; None: not counted (the caller counts from serve's notes). */
PyObject *rmq_send_count_into(SendPathObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || (args[0] != Py_None && !PyDict_Check(args[0])) ||
        (args[2] != Py_None && !PyByteArray_Check(args[2]))) {
        PyErr_SetString(PyExc_TypeError, "count_into(topics: dict | None, size_bounds, "
                        "rpc: bytearray | None, rpc_bounds)");
        return NULL;
    }
    send_counts c = {0};
    if (bounds_of(args[1], c.size_bounds, &c.n_size) < 0 ||
        bounds_of(args[3], c.rpc_bounds, &c.n_rpc) < 0)
        return NULL;
    if (args[2] != Py_None && PyByteArray_Size(args[2]) != 2 * 8 * (c.n_rpc + 2)) {
        PyErr_SetString(PyExc_ValueError, "rpc: 2 * 8 * (len(rpc_bounds) + 2) bytes");
        return NULL;
    }
    c.topics = args[0] == Py_None ? NULL : Py_NewRef(args[0]);
    c.rpc = args[2] == Py_None ? NULL : Py_NewRef(args[2]);
    Py_CLEAR(self->counts.topics);
    Py_CLEAR(self->counts.rpc);
    self->counts = c;
    Py_RETURN_NONE;
}

double rmq_count_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bucket(const double *bounds, int n, double v) {  /* bisect_left */
    int i = 0;
    while (i < n && bounds[i] < v) i++;
    return i;
}

/* One NORMAL send of body_len bytes stored in topic. 0, or -1 with an error set. */
int rmq_count_send(send_counts *c, PyObject *topic, int64_t body_len) {
    if (!c->topics) return 0;
    Py_ssize_t size = 8 * (4 + c->n_size + 2);
    PyObject *counters = PyDict_GetItemWithError(c->topics, topic);  /* borrowed */
    if (!counters) {
        if (PyErr_Occurred()) return -1;
        counters = PyByteArray_FromStringAndSize(NULL, size);
        if (!counters) return -1;
        memset(PyByteArray_AsString(counters), 0, (size_t)size);
        double since = rmq_count_clock();
        memcpy(PyByteArray_AsString(counters) + 24, &since, 8);
        int set = PyDict_SetItem(c->topics, topic, counters);
        Py_DECREF(counters);  /* the dict holds it */
        if (set < 0) return -1;
    }
    if (!PyByteArray_Check(counters) || PyByteArray_Size(counters) != size) {
        PyErr_SetString(PyExc_TypeError, "a topic's counters: a bytearray of its layout");
        return -1;
    }
    char *w = PyByteArray_AsString(counters);
    int64_t v[3];
    memcpy(v, w, 24);
    v[0] += 1;
    v[1] += body_len;
    v[2] += 1;
    memcpy(w, v, 24);
    char *at = w + 32 + 8 * bucket(c->size_bounds, c->n_size, (double)body_len);
    int64_t n;
    memcpy(&n, at, 8);
    n += 1;
    memcpy(at, &n, 8);
    double total;
    char *t = w + 32 + 8 * (c->n_size + 1);
    memcpy(&total, t, 8);
    total += (double)body_len;
    memcpy(t, &total, 8);
    return 0;
}

/* v1 SEND_MESSAGE and v2 SEND_MESSAGE_V2 answered SUCCESS, ms after their read came. */
void rmq_count_rpc(send_counts *c, Py_ssize_t v1, Py_ssize_t v2, double ms) {
    if (!c->rpc) return;
    Py_ssize_t slot = 8 * (c->n_rpc + 2);
    int b = bucket(c->rpc_bounds, c->n_rpc, ms);
    Py_ssize_t counts[2] = {v1, v2};
    for (int k = 0; k < 2; k++) {
        if (!counts[k]) continue;
        char *w = PyByteArray_AsString(c->rpc) + k * slot;
        int64_t n;
        memcpy(&n, w + 8 * b, 8);
        n += counts[k];
        memcpy(w + 8 * b, &n, 8);
        double total;
        memcpy(&total, w + 8 * (c->n_rpc + 1), 8);
        total += ms * (double)counts[k];
        memcpy(w + 8 * (c->n_rpc + 1), &total, 8);
    }
}
