/* rmqstore._native._put: the embedded store's single put in one Python call, and its result.
 *
 * A CPython extension (limited API) beside the cffi module because a put's cost was its Python
 * calls, not its append: two Python frames, a cffi call that dropped and took back the GIL, and
 * a result built attribute by attribute cost five times the encode. Putter.put takes the plain
 * path of StoreWriter.put (a topic and queue put to before, a bytes body, no options) in C: the
 * put lock, rmq_put_simple (its address handed over from the cffi module, so the append exists
 * once), the PutResult, the arrival wake-up and the append hook. Any other call goes to the
 * Python put unchanged, which also retries an append that asked for a roll (a refused append
 * changes nothing a second attempt would not see again). Putter.put_async is put for
 * StoreWriter.put_async (a PendingPut, no wait). Putter.put_batch does the same for
 * StoreWriter.put_batch, appending the bodies where they lie (no joined copy) with
 * rmq_put_batch, the GIL released; Putter.append_batch is that append for the Python
 * put_batch (a batch with options). Targets is the Putter's table entry for one topic: its
 * queues' rmq_queue addresses in one object, indexed by queue id. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include "rmq_internal.h"
#include "rmq_pytype.h"
#include "targets.h"

typedef int64_t (*put_simple_fn)(rmq_log *, rmq_queue *, const char *, int32_t, const char *,
                                 int32_t);
typedef int32_t (*put_batch_fn)(rmq_log *, rmq_queue *, const char *const *, const int32_t *,
                                int32_t, const char *, int32_t, int64_t, int32_t, int64_t,
                                int64_t *, int32_t *);

/* -- PutResultBase: rmqstore.message.PutResult's fields ---------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *status;
    PyObject *host; /* the store host as stored (8 or 20 bytes): msg_id's first part */
    long long queue_id;
    long long queue_offset;
    long long commitlog_offset;
    long long store_timestamp;
} ResultObject;

static PyTypeObject *result_base;

static int result_traverse(ResultObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->status);
    Py_VISIT(self->host);
    return 0;
}

static int result_clear(ResultObject *self) {
    Py_CLEAR(self->status);
    Py_CLEAR(self->host);
    return 0;
}

static void result_dealloc(ResultObject *self) {
    rmq_heap_dealloc((PyObject *)self, (inquiry)result_clear);
}

static ResultObject *result_alloc(PyTypeObject *tp, PyObject *status, long long queue_id,
                                  long long queue_offset, long long commitlog_offset,
                                  long long store_timestamp, PyObject *host) {
    ResultObject *r = (ResultObject *)PyType_GenericAlloc(tp, 0);
    if (!r) return NULL;
    PyObject_GC_UnTrack(r); /* it holds an enum member and bytes: no cycle runs through it */
    Py_INCREF(status);
    r->status = status;
    Py_INCREF(host);
    r->host = host;
    r->queue_id = queue_id;
    r->queue_offset = queue_offset;
    r->commitlog_offset = commitlog_offset;
    r->store_timestamp = store_timestamp;
    return r;
}

/* PutResult(status, queue_id, queue_offset, commitlog_offset, store_timestamp, host) */
static PyObject *result_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"status", "queue_id", "queue_offset", "commitlog_offset",
                            "store_timestamp", "host", NULL};
    PyObject *status, *host;
    long long queue_id, queue_offset, commitlog_offset, store_timestamp;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OLLLLO", names, &status, &queue_id,
                                     &queue_offset, &commitlog_offset, &store_timestamp, &host))
        return NULL;
    return (PyObject *)result_alloc(tp, status, queue_id, queue_offset, commitlog_offset,
                                    store_timestamp, host);
}

static PyMemberDef result_members[] = {
    {"status", T_OBJECT_EX, offsetof(ResultObject, status), 0, NULL},
    {"_host", T_OBJECT_EX, offsetof(ResultObject, host), 0, NULL},
    {"queue_id", T_LONGLONG, offsetof(ResultObject, queue_id), 0, NULL},
    {"queue_offset", T_LONGLONG, offsetof(ResultObject, queue_offset), 0, NULL},
    {"commitlog_offset", T_LONGLONG, offsetof(ResultObject, commitlog_offset), 0, NULL},
    {"store_timestamp", T_LONGLONG, offsetof(ResultObject, store_timestamp), 0, NULL},
    {NULL},
};

static PyType_Slot result_slots[] = {
    {Py_tp_new, result_new},
    {Py_tp_dealloc, result_dealloc},
    {Py_tp_traverse, result_traverse},
    {Py_tp_clear, result_clear},
    {Py_tp_members, result_members},
    {0, NULL},
};

static PyType_Spec result_spec = {
    "rmqstore._native._put.PutResultBase", sizeof(ResultObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, result_slots,
};

/* -- Targets: one topic's plain-path queues ------------------------------------------------ */

/* A put to one queue out of thousands finds it in one dict entry and this one object (the
 * 4 queues of a topic share both), where a table keyed by queue id, then topic, then a tuple
 * holding an int cost three more cache misses. Immutable: with_queue returns a copy. */
/* target_slot, TargetsObject: targets.h (send_read.c reads them too) */

#define TARGETS_MAX_QUEUE_ID 65535 /* a larger id takes the Python put (its slots would be a waste) */

static PyTypeObject *targets_type;

static int targets_traverse(TargetsObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    for (Py_ssize_t i = 0; i < self->n; i++) Py_VISIT(self->slot[i].owner);
    return 0;
}

static int targets_clear(TargetsObject *self) {
    for (Py_ssize_t i = 0; i < self->n; i++) {
        self->slot[i].q = NULL;
        Py_CLEAR(self->slot[i].owner);
    }
    return 0;
}

static void targets_dealloc(TargetsObject *self) {
    rmq_heap_dealloc((PyObject *)self, (inquiry)targets_clear);
}

static TargetsObject *targets_alloc(Py_ssize_t n) {
    TargetsObject *t = (TargetsObject *)PyType_GenericAlloc(targets_type, n);
    if (t) t->n = n; /* GenericAlloc zeroed the slots */
    return t;
}

/* The slot index of queue_id (None or an int), or -1 when it has none in a table of n. */
static inline Py_ssize_t slot_of(PyObject *queue_id, Py_ssize_t n) {
    if (queue_id == Py_None) return n > 0 ? 0 : -1;
    if (!PyLong_CheckExact(queue_id)) return -1;
    long v = PyLong_AsLong(queue_id);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return v >= 0 && v + 1 < n ? (Py_ssize_t)v + 1 : -1;
}

/* Targets() -> the table of a topic with no plain target */
static PyObject *targets_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs) {
    (void)tp;
    if (!PyArg_ParseTuple(args, ":Targets") || (kwargs && PyDict_Size(kwargs))) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Targets() takes no arguments");
        return NULL;
    }
    return (PyObject *)targets_alloc(0);
}

/* with_queue(queue_id, address, owner) -> a copy whose queue_id (None or 0..65535) goes to
 * the rmq_queue at address, which owner keeps allocated */
static PyObject *targets_with_queue(TargetsObject *self, PyObject *args) {
    PyObject *queue_id, *addr, *owner;
    if (!PyArg_ParseTuple(args, "OO!O", &queue_id, &PyLong_Type, &addr, &owner)) return NULL;
    Py_ssize_t at = 0;
    if (queue_id != Py_None) {
        long v = PyLong_Check(queue_id) ? PyLong_AsLong(queue_id) : -1;
        if (v < 0 || v > TARGETS_MAX_QUEUE_ID) {
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_SetString(PyExc_ValueError, "queue_id must be None or 0..65535");
            }
            return NULL;
        }
        at = (Py_ssize_t)v + 1;
    }
    rmq_queue *q = (rmq_queue *)PyLong_AsVoidPtr(addr);
    if (!q) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "null address");
        return NULL;
    }
    TargetsObject *t = targets_alloc(at < self->n ? self->n : at + 1);
    if (!t) return NULL;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        t->slot[i] = self->slot[i];
        Py_XINCREF(t->slot[i].owner);
    }
    Py_XDECREF(t->slot[at].owner);
    Py_INCREF(owner);
    t->slot[at].q = q;
    t->slot[at].owner = owner;
    return (PyObject *)t;
}

/* get(queue_id) -> the owner of queue_id's target, or None */
static PyObject *targets_get(TargetsObject *self, PyObject *queue_id) {
    Py_ssize_t i = slot_of(queue_id, self->n);
    PyObject *owner = i >= 0 && self->slot[i].q ? self->slot[i].owner : Py_None;
    Py_INCREF(owner);
    return owner;
}

static PyMethodDef targets_methods[] = {
    {"with_queue", (PyCFunction)targets_with_queue, METH_VARARGS,
     "with_queue(queue_id, address, owner) -> a copy with queue_id's target set"},
    {"get", (PyCFunction)targets_get, METH_O, "get(queue_id) -> its target's owner, or None"},
    {NULL},
};

static PyType_Slot targets_slots[] = {
    {Py_tp_new, targets_new},
    {Py_tp_dealloc, targets_dealloc},
    {Py_tp_traverse, targets_traverse},
    {Py_tp_clear, targets_clear},
    {Py_tp_methods, targets_methods},
    {0, NULL},
};

static PyType_Spec targets_spec = {
    "rmqstore._native._put.Targets", offsetof(TargetsObject, slot), sizeof(target_slot),
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, targets_slots,
};

/* -- Putter --------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    put_simple_fn put_simple;
    put_batch_fn put_batch;
    rmq_log *log;
    PyObject *log_owner;   /* keeps *log allocated */
    PyObject *targets;     /* topic -> Targets */
    PyObject *acquire;     /* the put lock's acquire and release */
    PyObject *release;
    PyObject *notify;      /* the arrival condition's notify_all */
    PyObject *slow;        /* StoreWriter's Python put: every call the plain path does not take */
    PyObject *slow_async;  /* its Python put_async */
    PyObject *slow_batch;  /* and its Python put_batch */
    PyObject *roll;        /* (queue, stop code): make room as a native append asked (or raise) */
    PyObject *durable;     /* None, or (result) -> result once it is on disk (sync flush) */
    PyObject *durable_batch; /* None, or the same for a PutBatchResult */
    PyObject *pending;     /* (result) -> PendingPut: what put_async returns */
    PyObject *result_type; /* rmqstore.message.PutResult */
    PyObject *batch_type;  /* rmqstore.message.PutBatchResult */
    PyObject *status_ok;
    PyObject *host;
    PyObject *on_append;   /* None, or called after every append, under the put lock */
    Py_ssize_t plain_limit; /* bodies this long or longer take the Python put */
    Py_ssize_t max_body;   /* a batch with a longer body takes the Python put_batch (it raises) */
    int refusing;          /* closed, disk full, a failed sync or a replica: Python raises */
    int waiters;           /* callers in wait_for_message (the put lock guards it) */
} PutterObject;

static PyObject *queue_id_name; /* "queue_id", interned */

static int putter_traverse(PutterObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->log_owner);
    Py_VISIT(self->targets);
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    Py_VISIT(self->notify);
    Py_VISIT(self->slow);
    Py_VISIT(self->slow_async);
    Py_VISIT(self->slow_batch);
    Py_VISIT(self->roll);
    Py_VISIT(self->durable);
    Py_VISIT(self->durable_batch);
    Py_VISIT(self->pending);
    Py_VISIT(self->result_type);
    Py_VISIT(self->batch_type);
    Py_VISIT(self->status_ok);
    Py_VISIT(self->host);
    Py_VISIT(self->on_append);
    return 0;
}

static int putter_clear(PutterObject *self) {
    Py_CLEAR(self->log_owner);
    Py_CLEAR(self->targets);
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    Py_CLEAR(self->notify);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->slow_async);
    Py_CLEAR(self->slow_batch);
    Py_CLEAR(self->roll);
    Py_CLEAR(self->durable);
    Py_CLEAR(self->durable_batch);
    Py_CLEAR(self->pending);
    Py_CLEAR(self->result_type);
    Py_CLEAR(self->batch_type);
    Py_CLEAR(self->status_ok);
    Py_CLEAR(self->host);
    Py_CLEAR(self->on_append);
    return 0;
}

static void putter_dealloc(PutterObject *self) {
    rmq_heap_dealloc((PyObject *)self, (inquiry)putter_clear);
}

/* Putter(put_simple, put_batch, log, log_owner, targets, lock, arrival, slow, slow_async,
 *        slow_batch, roll, durable, durable_batch, pending, result_type, batch_type,
 *        status_ok, host, plain_limit, max_body): put_simple, put_batch and log are addresses (rmq_put_simple's,
 * rmq_put_batch's, the Appender's rmq_log) that log_owner keeps valid; lock and arrival are the
 * put lock and the condition over it; the rest as the struct's fields say. */
static PyObject *putter_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"put_simple", "put_batch", "log", "log_owner", "targets", "lock",
                            "arrival", "slow", "slow_async", "slow_batch", "roll", "durable",
                            "durable_batch", "pending", "result_type", "batch_type",
                            "status_ok", "host", "plain_limit", "max_body", NULL};
    PyObject *fn_addr, *batch_addr, *log_addr, *log_owner, *targets, *lock, *arrival, *slow;
    PyObject *slow_async, *slow_batch, *roll, *durable, *durable_batch, *pending;
    PyObject *result_type, *batch_type, *status_ok, *host;
    Py_ssize_t plain_limit, max_body;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!OO!OOOOOOOOOOOOOnn", names,
                                     &PyLong_Type, &fn_addr, &PyLong_Type, &batch_addr,
                                     &PyLong_Type, &log_addr, &log_owner, &PyDict_Type,
                                     &targets, &lock, &arrival, &slow, &slow_async, &slow_batch,
                                     &roll, &durable, &durable_batch, &pending, &result_type,
                                     &batch_type, &status_ok, &host, &plain_limit, &max_body))
        return NULL;
    if (!PyType_Check(result_type) ||
        !PyType_IsSubtype((PyTypeObject *)result_type, result_base)) {
        PyErr_SetString(PyExc_TypeError, "result_type must subclass PutResultBase");
        return NULL;
    }
    PutterObject *self = (PutterObject *)PyType_GenericAlloc(tp, 0);
    if (!self) return NULL;
    self->put_simple = (put_simple_fn)PyLong_AsVoidPtr(fn_addr);
    self->put_batch = (put_batch_fn)PyLong_AsVoidPtr(batch_addr);
    self->log = (rmq_log *)PyLong_AsVoidPtr(log_addr);
    self->acquire = PyObject_GetAttrString(lock, "acquire");
    self->release = PyObject_GetAttrString(lock, "release");
    self->notify = PyObject_GetAttrString(arrival, "notify_all");
    if (PyErr_Occurred() || !self->put_simple || !self->put_batch || !self->log) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "null address");
        Py_DECREF(self);
        return NULL;
    }
    PyObject **keep[] = {&self->log_owner, &self->targets, &self->slow, &self->slow_async,
                         &self->slow_batch, &self->roll, &self->durable, &self->durable_batch,
                         &self->pending, &self->result_type, &self->batch_type,
                         &self->status_ok, &self->host, &self->on_append};
    PyObject *given[] = {log_owner, targets, slow, slow_async, slow_batch, roll, durable,
                         durable_batch, pending, result_type, batch_type, status_ok, host,
                         Py_None};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        Py_INCREF(given[i]);
        *keep[i] = given[i];
    }
    self->plain_limit = plain_limit;
    self->max_body = max_body;
    return (PyObject *)self;
}

/* slow (the Python put or put_batch) with the arguments this call was given. */
static PyObject *call_slow(PyObject *slow, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
    Py_ssize_t nkw = kwnames ? PyTuple_Size(kwnames) : 0;
    PyObject *pos = PyTuple_New(nargs), *kw = nkw ? PyDict_New() : NULL, *out = NULL;
    if (!pos || (nkw && !kw)) goto done;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SetItem(pos, i, args[i]);
    }
    for (Py_ssize_t i = 0; i < nkw; i++)
        if (PyDict_SetItem(kw, PyTuple_GetItem(kwnames, i), args[nargs + i]) < 0) goto done;
    out = PyObject_Call(slow, pos, kw);
done:
    Py_XDECREF(pos);
    Py_XDECREF(kw);
    return out;
}

static int call_none(PyObject *fn) {
    PyObject *r = PyObject_CallNoArgs(fn);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Whether a call has the plain shape (topic, payload, and at most queue_id by keyword) and
 * puts are not refused; *queue_id gets the one given, or None. */
static int plain_call(PutterObject *self, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames, PyObject **queue_id) {
    *queue_id = Py_None;
    if (nargs != 2 || self->refusing) return 0;
    if (kwnames) {
        PyObject *name = PyTuple_GetItem(kwnames, 0);
        if (PyTuple_Size(kwnames) != 1 ||
            (name != queue_id_name && PyUnicode_Compare(name, queue_id_name) != 0))
            return 0;
        *queue_id = args[2];
    }
    return 1;
}

/* The plain target of (queue_id, topic): *q and *owner (the ConsumeQueue), and a new
 * reference to the Targets holding them, or NULL (no error set) when (queue_id, topic) has
 * none. */
static PyObject *plain_target(PutterObject *self, PyObject *queue_id, PyObject *topic,
                              rmq_queue **q, PyObject **owner) {
    PyObject *t = PyDict_GetItemWithError(self->targets, topic);
    *q = NULL;
    if (!t || Py_TYPE(t) != targets_type) {
        PyErr_Clear(); /* an unhashable argument: the Python put says what is wrong */
        return NULL;
    }
    TargetsObject *ts = (TargetsObject *)t;
    Py_ssize_t i = slot_of(queue_id, ts->n);
    if (i < 0 || !ts->slot[i].q) return NULL;
    *q = ts->slot[i].q;
    *owner = ts->slot[i].owner;
    Py_INCREF(t); /* the table may drop it while acquire waits without the GIL */
    return t;
}

/* After an append under the put lock (ok: it succeeded): wake wait_for_message callers and
 * call on_append as the Python put does, then release the lock. 0, or -1 with the error of
 * whichever step raised (the records stay stored, as with the Python put). */
static int appended_unlock(PutterObject *self, int ok) {
    int failed = !ok || (self->waiters && call_none(self->notify) < 0) ||
                 (self->on_append != Py_None && call_none(self->on_append) < 0);
    if (!failed) return call_none(self->release);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    call_none(self->release);
    PyErr_Restore(type, value, tb);
    return -1;
}

/* result, or then(result) (None: result itself): a sync-flush store's wait for the disk, or
 * put_async's PendingPut; steals result. */
static PyObject *then(PyObject *then, PyObject *result) {
    if (!result || then == Py_None) return result;
    PyObject *out = PyObject_CallFunctionObjArgs(then, result, NULL);
    Py_DECREF(result);
    return out;
}

/* The plain path of put and put_async: slow takes every other call; then_ (see then) makes
 * what the call returns. */
static PyObject *put_one(PutterObject *self, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames, PyObject *slow, PyObject *then_) {
    PyObject *queue_id, *body = nargs > 1 ? args[1] : NULL, *target = NULL, *owner;
    rmq_queue *q = NULL;
    Py_ssize_t len = 0;
    if (plain_call(self, args, nargs, kwnames, &queue_id) && PyBytes_CheckExact(body) &&
        (len = PyBytes_Size(body)) < self->plain_limit)
        target = plain_target(self, queue_id, args[0], &q, &owner);
    if (!target) return call_slow(slow, args, nargs, kwnames);
    if (call_none(self->acquire) < 0) {
        Py_DECREF(target);
        return NULL;
    }
    /* the topic's bytes from the caller's str, equal to q's (Targets is keyed by it) */
    Py_ssize_t topic_len = 0;
    const char *topic = PyUnicode_CheckExact(args[0]) ?
                        PyUnicode_AsUTF8AndSize(args[0], &topic_len) : NULL;
    if (!topic) {
        PyErr_Clear();
        topic = q->topic;
        topic_len = q->topic_len;
    }
    int64_t qoff = self->refusing ? -1 : self->put_simple(self->log, q, topic,
                                                          (int32_t)topic_len,
                                                          PyBytes_AsString(body), (int32_t)len);
    PyObject *result = NULL;
    if (qoff >= 0)
        result = (PyObject *)result_alloc((PyTypeObject *)self->result_type, self->status_ok,
                                          q->queue_id, qoff, self->log->last_phys,
                                          self->log->last_ts, self->host);
    Py_DECREF(target);
    if (appended_unlock(self, qoff < 0 || result != NULL) < 0) {
        Py_XDECREF(result);
        return NULL;
    }
    if (qoff < 0) return call_slow(slow, args, nargs, kwnames); /* rolls, or raises */
    return then(then_, result);
}

/* put(topic, body, *, queue_id=None, options=None, **fields) -> PutResult: StoreWriter.put */
static PyObject *putter_put(PutterObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    return put_one(self, args, nargs, kwnames, self->slow, self->durable);
}

/* put_async(topic, body, *, queue_id=None, options=None, **fields) -> PendingPut:
 * StoreWriter.put_async */
static PyObject *putter_put_async(PutterObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames) {
    return put_one(self, args, nargs, kwnames, self->slow_async, self->pending);
}

/* -- batches -------------------------------------------------------------------------------- */

/* A batch's bodies as the native append takes them: a tuple holding the bytes (a list could
 * change while the GIL is released), a pointer and a length per body, room for the offsets. */
typedef struct {
    PyObject *items;
    Py_ssize_t n;
    const char **ptrs;
    int32_t *lens;
    int64_t *phys;
    void *heap;
    const char *on_stack_ptrs[256];
    int32_t on_stack_lens[256];
    int64_t on_stack_phys[256];
} bodies_view;

/* 1 when every body is bytes of at most max_body bytes (then free with bodies_free), 0 when
 * not (the Python put_batch takes the call, or says what is wrong), -1 on an error. */
static int bodies_take(bodies_view *v, PyObject *bodies, Py_ssize_t max_body) {
    v->heap = NULL;
    v->items = PySequence_Tuple(bodies);
    if (!v->items) return -1;
    v->n = PyTuple_Size(v->items);
    if (v->n == 0 || v->n > INT32_MAX) {
        Py_DECREF(v->items);
        return 0;
    }
    v->ptrs = v->on_stack_ptrs;
    v->lens = v->on_stack_lens;
    v->phys = v->on_stack_phys;
    if (v->n > 256) {
        v->heap = PyMem_Malloc((size_t)v->n * (sizeof(char *) + 4 + 8));
        if (!v->heap) {
            Py_DECREF(v->items);
            PyErr_NoMemory();
            return -1;
        }
        v->phys = (int64_t *)v->heap;
        v->ptrs = (const char **)(v->phys + v->n);
        v->lens = (int32_t *)(v->ptrs + v->n);
    }
    for (Py_ssize_t i = 0; i < v->n; i++) {
        PyObject *b = PyTuple_GetItem(v->items, i);
        Py_ssize_t len = PyBytes_CheckExact(b) ? PyBytes_Size(b) : max_body + 1;
        if (len > max_body) {
            PyMem_Free(v->heap);
            Py_DECREF(v->items);
            return 0;
        }
        v->ptrs[i] = PyBytes_AsString(b);
        v->lens[i] = (int32_t)len;
    }
    return 1;
}

static void bodies_free(bodies_view *v) {
    PyMem_Free(v->heap);
    Py_DECREF(v->items);
}

/* Appends every body to q (the caller holds the put lock), one store time for all, rolling
 * through roll(queue, stop) as rmq_put_batch asks (batch_append's loop). 0, or -1 with an
 * exception set (the bodies before the failing one stay stored). */
static int append_bodies(PutterObject *self, rmq_queue *q, PyObject *queue, bodies_view *v,
                         const char *props, int32_t props_len, int64_t tags_code,
                         int32_t flag) {
    Py_ssize_t done = 0;
    int64_t stamp = 0; /* the first call takes the time; continuations reuse it */
    while (done < v->n) {
        int32_t stop = RMQ_OK, wrote;
        PyThreadState *ts = PyEval_SaveThread();
        wrote = self->put_batch(self->log, q, v->ptrs + done, v->lens + done,
                                (int32_t)(v->n - done), props, props_len, tags_code, flag,
                                stamp, v->phys + done, &stop);
        PyEval_RestoreThread(ts);
        done += wrote;
        stamp = done ? self->log->last_ts : 0;
        if (stop != RMQ_OK) {
            PyObject *r = PyObject_CallFunction(self->roll, "Oi", queue, (int)stop);
            if (!r) return -1;
            Py_DECREF(r);
        }
    }
    return 0;
}

static PyObject *phys_list(const bodies_view *v) {
    PyObject *out = PyList_New(v->n);
    for (Py_ssize_t i = 0; out && i < v->n; i++) {
        PyObject *p = PyLong_FromLongLong(v->phys[i]);
        if (!p) {
            Py_CLEAR(out);
            break;
        }
        PyList_SetItem(out, i, p);
    }
    return out;
}

/* put_batch(topic, bodies, *, queue_id=None, options=None, **fields) -> PutBatchResult:
 * StoreWriter.put_batch */
static PyObject *putter_put_batch(PutterObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames) {
    PyObject *queue_id, *bodies = nargs > 1 ? args[1] : NULL, *target = NULL, *owner = NULL;
    rmq_queue *q = NULL;
    bodies_view v;
    int taken = 0;
    if (plain_call(self, args, nargs, kwnames, &queue_id) &&
        (PyList_CheckExact(bodies) || PyTuple_CheckExact(bodies)) &&
        (target = plain_target(self, queue_id, args[0], &q, &owner)) &&
        (taken = bodies_take(&v, bodies, self->max_body)) < 0) {
        Py_DECREF(target);
        return NULL;
    }
    if (!taken) {
        Py_XDECREF(target);
        return call_slow(self->slow_batch, args, nargs, kwnames);
    }
    PyObject *result = NULL, *offsets = NULL;
    if (call_none(self->acquire) < 0) goto done;
    if (self->refusing) { /* decided under the lock, as the Python put_batch does */
        if (call_none(self->release) == 0)
            result = call_slow(self->slow_batch, args, nargs, kwnames);
        goto done;
    }
    int ok = append_bodies(self, q, owner, &v, "", 0, 0, 0) == 0;
    int64_t first = (q->cq_start + q->cq_cell) / RMQ_CQ_UNIT - v.n, now = self->log->last_ts;
    if (appended_unlock(self, ok) < 0 || !(offsets = phys_list(&v))) goto done;
    result = PyObject_CallFunction(self->batch_type, "OiLOLO", self->status_ok, q->queue_id,
                                   (long long)first, offsets, (long long)now, self->host);
    result = then(self->durable_batch, result);
done:
    Py_XDECREF(offsets);
    Py_DECREF(target);
    bodies_free(&v);
    return result;
}

/* append_batch(queue, bodies, props, tags_code, flag) -> (commit-log offsets, store time):
 * the append of a Python put_batch, which holds the put lock; queue is a ConsumeQueue whose
 * plain_target entry is target. */
static PyObject *putter_append_batch(PutterObject *self, PyObject *args) {
    PyObject *target, *bodies;
    const char *props;
    Py_ssize_t props_len;
    long long tags_code;
    int flag;
    if (!PyArg_ParseTuple(args, "O!Oy#Li", &PyTuple_Type, &target, &bodies, &props, &props_len,
                          &tags_code, &flag))
        return NULL;
    rmq_queue *q = (rmq_queue *)PyLong_AsVoidPtr(PyTuple_GetItem(target, 0));
    if (!q) return NULL;
    bodies_view v;
    int taken = bodies_take(&v, bodies, self->max_body);
    if (taken <= 0) {
        if (!taken) PyErr_SetString(PyExc_ValueError, "bodies must be bytes within max_body");
        return NULL;
    }
    PyObject *out = NULL, *offsets = NULL;
    if (append_bodies(self, q, PyTuple_GetItem(target, 1), &v, props, (int32_t)props_len,
                      tags_code, flag) == 0 && (offsets = phys_list(&v)))
        out = Py_BuildValue("OL", offsets, (long long)self->log->last_ts);
    Py_XDECREF(offsets);
    bodies_free(&v);
    return out;
}

static PyMethodDef putter_methods[] = {
    {"put", (PyCFunction)(void (*)(void))putter_put, METH_FASTCALL | METH_KEYWORDS,
     "StoreWriter.put: the plain path here, any other call through the Python put"},
    {"put_async", (PyCFunction)(void (*)(void))putter_put_async, METH_FASTCALL | METH_KEYWORDS,
     "StoreWriter.put_async: the plain path here, any other call through the Python one"},
    {"put_batch", (PyCFunction)(void (*)(void))putter_put_batch, METH_FASTCALL | METH_KEYWORDS,
     "StoreWriter.put_batch: bodies alone here, any other call through the Python put_batch"},
    {"append_batch", (PyCFunction)putter_append_batch, METH_VARARGS,
     "the append of a Python put_batch, under the put lock: (offsets, store time)"},
    {NULL},
};

static PyMemberDef putter_members[] = {
    {"refusing", T_INT, offsetof(PutterObject, refusing), 0, NULL},
    {"waiters", T_INT, offsetof(PutterObject, waiters), 0, NULL},
    {"on_append", T_OBJECT, offsetof(PutterObject, on_append), 0, NULL},
    {NULL},
};

static PyType_Slot putter_slots[] = {
    {Py_tp_new, putter_new},
    {Py_tp_dealloc, putter_dealloc},
    {Py_tp_traverse, putter_traverse},
    {Py_tp_clear, putter_clear},
    {Py_tp_methods, putter_methods},
    {Py_tp_members, putter_members},
    {0, NULL},
};

static PyType_Spec putter_spec = {
    "rmqstore._native._put.Putter", sizeof(PutterObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, putter_slots,
};

/* -- module ------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    RMQ_ABI_METHOD,
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "rmqstore._native._put", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__put(void) {
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    queue_id_name = PyUnicode_InternFromString("queue_id");
    result_base = (PyTypeObject *)PyType_FromSpec(&result_spec);
    targets_type = (PyTypeObject *)PyType_FromSpec(&targets_spec);
    PyObject *putter = PyType_FromSpec(&putter_spec);
    if (!queue_id_name || !result_base || !targets_type || !putter ||
        PyModule_AddObject(m, "PutResultBase", (PyObject *)result_base) < 0) {
        Py_XDECREF(putter);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(result_base); /* the module's reference went to AddObject */
    Py_INCREF(targets_type);
    if (PyModule_AddObject(m, "Targets", (PyObject *)targets_type) < 0) {
        Py_DECREF(targets_type);
        Py_DECREF(putter);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObject(m, "Putter", putter) < 0) {
        Py_DECREF(putter);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
