/* SendPath.serve: every common send of one socket read answered in one C-API call.
 *
 * The broker's per-frame native path (send_native.py's on_frame) still cost about two dozen
 * Python calls per send: the frame split, the parse's tuple, the checks, the store's put_sent,
 * the index, the answer, the counters. serve walks the read's frames itself and, for each
 * SEND_MESSAGE / V2 that rmq_send_parse takes whose topic is in the broker's fast table
 * (topic -> how many queue ids a send may name, filled and cleared by send_native.py), puts it
 * with rmq_put into a queue the store writer's Targets already hold, indexes its keys and
 * writes its SUCCESS answer; the put lock is taken once for the read, the arrival wake-up and
 * the append hook run once. It stops, before touching anything of it, at the first frame that
 * is not such a send (or is incomplete, or malformed, or asks for a durable wait, or whose
 * append asks for a roll): that frame and the rest go to the Python path as they came, so
 * answers keep the request order.
 *
 * With sync flush or a SYNC_MASTER (durable_waits), a read whose sends ask to wait (WAIT=true)
 * is taken too, up to the first send that does not wait (and a read of sends that do not, up
 * to the first that does): its answers are then held by send_native.py until the read's last
 * record is durable and/or on a slave, and written in one piece; for a failed wait, each send's
 * (opaque, code, queue id, queue offset, phys offset, store time) is given as HELD_ITEM. */
#include <stddef.h>
#include <string.h>
#include "send_path.h"

/* Marks of a message the traffic counters would not count as NORMAL (message_type's): such
 * a send goes to Python; what serve takes is always NORMAL. */
static const char *const NOT_NORMAL[] = {"TRAN_MSG\x01true", "DELAY\x01", "TIMER_D"};  /* T or D first */

/* Attribute and method names, interned once: PyObject_GetAttrString made a str per call,
 * several per send. */
enum { N_REFUSING, N_WAITERS, N_ON_APPEND, N_FILES, N_DIRTY, N_GET, N_WADDR, N_PENDING, N_CUE,
       N_COUNT };
static const char *const NAME_TEXT[N_COUNT] = {
    "refusing", "waiters", "on_append", "files", "dirty", "get", "waddr", "async_pending",
    "cue"};
static PyObject *names[N_COUNT];

static int intern_names(void) {
    for (int i = 0; i < N_COUNT; i++)
        if (!names[i] && !(names[i] = PyUnicode_InternFromString(NAME_TEXT[i]))) return -1;
    return 0;
}

int rmq_fast_traverse(fast_state *f, visitproc visit, void *arg) {
    Py_VISIT(f->table);
    Py_VISIT(f->targets);
    Py_VISIT(f->targets_type);
    Py_VISIT(f->putter);
    Py_VISIT(f->acquire);
    Py_VISIT(f->release);
    Py_VISIT(f->notify_all);
    Py_VISIT(f->index);
    Py_VISIT(f->locate);
    Py_VISIT(f->commit);
    Py_VISIT(f->store_host);
    Py_VISIT(f->index_file);
    Py_VISIT(f->last_topic);
    return 0;
}

void rmq_fast_clear(fast_state *f) {
    Py_CLEAR(f->table);
    Py_CLEAR(f->targets);
    Py_CLEAR(f->targets_type);
    Py_CLEAR(f->putter);
    Py_CLEAR(f->acquire);
    Py_CLEAR(f->release);
    Py_CLEAR(f->notify_all);
    Py_CLEAR(f->index);
    Py_CLEAR(f->locate);
    Py_CLEAR(f->commit);
    Py_CLEAR(f->store_host);
    Py_CLEAR(f->index_file);
    Py_CLEAR(f->last_topic);
    f->idx = NULL;
}

/* The topic at s as a str (a new reference): the last one again when it is the same, so that
 * its hash is not computed anew for every send of a producer. NULL with an error set. */
static PyObject *topic_of(fast_state *f, const uint8_t *s, int32_t n) {
    if (f->last_topic) {
        Py_ssize_t len;
        const char *last = PyUnicode_AsUTF8AndSize(f->last_topic, &len);
        if (last && len == n && memcmp(last, s, (size_t)n) == 0) {
            Py_INCREF(f->last_topic);
            return f->last_topic;
        }
    }
    PyObject *topic = PyUnicode_DecodeASCII((const char *)s, n, NULL);
    if (!topic) return NULL;
    Py_XDECREF(f->last_topic);
    Py_INCREF(topic);
    f->last_topic = topic;
    return topic;
}

/* bind_fast(table, targets, putter, lock, arrival, log_address, plain_limit, durable_waits,
 * store_host, index, locate, commit): see fast_state; lock the put lock, arrival its
 * Condition, index the IndexService or None, commit the GroupCommit puts in flight cue. */
PyObject *rmq_send_bind_fast(SendPathObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 12 || !PyDict_Check(args[0]) || !PyDict_Check(args[1]) ||
        !PyBytes_Check(args[8]) || PyBytes_Size(args[8]) > 32) {
        PyErr_SetString(PyExc_TypeError, "bind_fast(table: dict, targets: dict, putter, lock, "
                        "arrival, log_address, plain_limit, durable_waits, "
                        "store_host: bytes, index, locate, commit)");
        return NULL;
    }
    if (intern_names() < 0) return NULL;
    fast_state f = {0};
    f.log = (rmq_log *)PyLong_AsVoidPtr(args[5]);
    f.plain_limit = PyLong_AsLongLong(args[6]);
    f.durable_waits = PyObject_IsTrue(args[7]);
    if (PyErr_Occurred()) return NULL;
    if (!f.log) {
        PyErr_SetString(PyExc_ValueError, "null address");
        return NULL;
    }
    PyObject *put = PyImport_ImportModule("rmqstore._native._put");
    f.targets_type = put ? PyObject_GetAttrString(put, "Targets") : NULL;
    Py_XDECREF(put);
    if (!f.targets_type) return NULL;
    f.acquire = PyObject_GetAttrString(args[3], "acquire");
    f.release = PyObject_GetAttrString(args[3], "release");
    f.notify_all = PyObject_GetAttrString(args[4], "notify_all");
    if (!f.acquire || !f.release || !f.notify_all) {
        rmq_fast_clear(&f);
        return NULL;
    }
    PyObject **keep[] = {&f.table, &f.targets, &f.putter, &f.store_host, &f.index, &f.locate,
                         &f.commit};
    PyObject *given[] = {args[0], args[1], args[2], args[8], args[9], args[10], args[11]};
    for (int i = 0; i < 7; i++) {
        Py_INCREF(given[i]);
        *keep[i] = given[i];
    }
    PyMem_Free(self->fast.answers);
    PyMem_Free(self->fast.held);
    rmq_fast_clear(&self->fast);
    self->fast = f;
    Py_RETURN_NONE;
}

/* An int attribute of o (the Putter's members), or -1 with an error set. */
static long int_attr(PyObject *o, PyObject *name) {
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v) return -1;
    long n = PyLong_AsLong(v);
    Py_DECREF(v);
    return n;
}

/* The rmq_queue of (topic, queue_id) the store writer's plain path takes, or NULL (no error
 * set) when it has none yet: the Targets slot, else Targets.get(queue_id).waddr. */
static rmq_queue *queue_of(fast_state *f, PyObject *topic, long queue_id) {
    PyObject *targets = PyDict_GetItemWithError(f->targets, topic);  /* borrowed */
    if (!targets) return NULL;
    if (Py_TYPE(targets) == (PyTypeObject *)f->targets_type) {  /* its slot, as putter.c's */
        const TargetsObject *t = (const TargetsObject *)targets;
        return queue_id >= 0 && queue_id + 1 < t->n ? t->slot[queue_id + 1].q : NULL;
    }
    PyObject *qid = PyLong_FromLong(queue_id);
    PyObject *owner = qid ? PyObject_CallMethodObjArgs(targets, names[N_GET], qid, NULL) : NULL;
    Py_XDECREF(qid);
    if (!owner || owner == Py_None) {
        Py_XDECREF(owner);
        return NULL;
    }
    PyObject *addr = PyObject_GetAttr(owner, names[N_WADDR]);
    Py_DECREF(owner);
    rmq_queue *q = addr ? (rmq_queue *)PyLong_AsVoidPtr(addr) : NULL;
    Py_XDECREF(addr);
    return q;
}

/* The index file every key goes into now: the IndexService's last, located again when it
 * changed (a roll, retention). 0 with f->idx set, 0 with f->idx NULL when there is none
 * (add_keys makes the first), -1 on an error. */
static int index_target(fast_state *f) {
    PyObject *files = PyObject_GetAttr(f->index, names[N_FILES]);
    if (!files) return -1;
    Py_ssize_t n = PyList_Check(files) ? PyList_Size(files) : 0;
    PyObject *last = n > 0 ? PyList_GetItem(files, n - 1) : NULL;  /* borrowed */
    if (last == f->index_file && f->idx) {
        Py_DECREF(files);
        return 0;
    }
    Py_CLEAR(f->index_file);
    f->idx = NULL;
    if (!last) {
        Py_DECREF(files);
        return 0;
    }
    PyObject *where = PyObject_CallFunctionObjArgs(f->locate, last, NULL);
    long long addr = 0;
    long slots = 0, entries = 0;
    int ok = where && PyArg_ParseTuple(where, "Lll", &addr, &slots, &entries);
    Py_XDECREF(where);
    if (ok && addr && slots > 0 && entries > 0) {
        Py_INCREF(last);
        f->index_file = last;
        f->idx = (uint8_t *)(uintptr_t)addr;
        f->slots = (int32_t)slots;
        f->entries = (int32_t)entries;
    }
    Py_DECREF(files);
    return ok ? 0 : -1;
}

/* One key as topic#key into f->idx: 1, 0 when the file is full, -1 on an error. */
static int index_one(fast_state *f, const char *topic, Py_ssize_t topic_len, const uint8_t *key,
                     Py_ssize_t key_len, int64_t phys, int64_t ts) {
    char local[512];
    size_t len = (size_t)(topic_len + 1 + key_len);
    char *buf = len <= sizeof local ? local : PyMem_Malloc(len);
    if (!buf) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(buf, topic, (size_t)topic_len);
    buf[topic_len] = '#';
    memcpy(buf + topic_len + 1, key, (size_t)key_len);
    int32_t ok = rmq_sent_index_put(f->idx, f->slots, f->entries, buf, len, phys, ts);
    if (buf != local) PyMem_Free(buf);
    return ok == 1;
}

/* The index keys of a record just appended (UNIQ_KEY, then KEYS split on spaces: index.py's
 * rule), as IndexService.add_keys puts them; what the file cannot hold goes to add_keys,
 * which rolls. 0, or -1 on an error. */
static int index_keys(fast_state *f, PyObject *topic, const uint8_t *uniq, int32_t uniq_len,
                      const uint8_t *keys, int32_t keys_len, int64_t phys, int64_t ts) {
    if (f->index == Py_None || (!uniq_len && !keys_len)) return 0;
    if (PyObject_SetAttr(f->index, names[N_DIRTY], Py_True) < 0 || index_target(f) < 0)
        return -1;
    Py_ssize_t topic_len;
    const char *t = PyUnicode_AsUTF8AndSize(topic, &topic_len);
    if (!t) return -1;
    /* the keys in order: [start, end) of uniq, then each of keys */
    const uint8_t *at[2] = {uniq, keys};
    int32_t lens[2] = {uniq_len, keys_len};
    PyObject *rest = NULL;  /* keys the file could not hold, for add_keys */
    for (int part = 0; part < 2; part++) {
        const uint8_t *p = at[part], *end = at[part] + lens[part];
        while (p < end) {
            const uint8_t *k = p;
            if (part == 1) {
                while (p < end && *p != ' ') p++;
            } else {
                p = end;
            }
            Py_ssize_t k_len = p - k;
            if (part == 1) p++;  /* past the space */
            if (!k_len) continue;
            int put = rest || !f->idx ? 0 : index_one(f, t, topic_len, k, k_len, phys, ts);
            if (put < 0) goto fail;
            if (put) continue;
            if (!rest && !(rest = PyList_New(0))) goto fail;
            PyObject *s = PyUnicode_DecodeASCII((const char *)k, k_len, NULL);
            if (!s || PyList_Append(rest, s) < 0) {
                Py_XDECREF(s);
                goto fail;
            }
            Py_DECREF(s);
        }
    }
    if (rest) {
        PyObject *done = PyObject_CallMethod(f->index, "add_keys", "OOLL", topic, rest,
                                             (long long)phys, (long long)ts);
        Py_DECREF(rest);
        Py_XDECREF(done);
        return done ? 0 : -1;
    }
    return 0;
fail:
    Py_XDECREF(rest);
    return -1;
}

/* Room for n more answer bytes in f->answers (used bytes at used). 0, or -1 on no memory. */
static int answers_room(fast_state *f, Py_ssize_t used, Py_ssize_t n) {
    if (used + n <= f->answers_cap) return 0;
    Py_ssize_t cap = f->answers_cap ? f->answers_cap : 4096;
    while (cap < used + n) cap *= 2;
    uint8_t *grown = PyMem_Realloc(f->answers, (size_t)cap);
    if (!grown) {
        PyErr_NoMemory();
        return -1;
    }
    f->answers = grown;
    f->answers_cap = cap;
    return 0;
}

/* A held send, little-endian: opaque i32, code i32, queue id i32, queue offset i64, phys
 * offset i64, store time i64 (send_native.py's HELD reads it). */
enum { HELD_ITEM = 36 };

static void put_le(uint8_t *w, uint64_t v, int n) {
    for (int i = 0; i < n; i++) w[i] = (uint8_t)(v >> (8 * i));
}

/* The held item of the n-th send of a waiting read. 0, or -1 on no memory. */
static int hold(fast_state *f, Py_ssize_t n, const rmq_send_req *r, int64_t qoff, int64_t phys,
                int64_t ts) {
    Py_ssize_t need = (n + 1) * HELD_ITEM;
    if (need > f->held_cap) {
        Py_ssize_t cap = f->held_cap ? f->held_cap * 2 : 64 * HELD_ITEM;
        while (cap < need) cap *= 2;
        uint8_t *grown = PyMem_Realloc(f->held, (size_t)cap);
        if (!grown) {
            PyErr_NoMemory();
            return -1;
        }
        f->held = grown;
        f->held_cap = cap;
    }
    uint8_t *w = f->held + n * HELD_ITEM;
    put_le(w, (uint32_t)r->opaque, 4);
    put_le(w + 4, (uint32_t)r->code, 4);
    put_le(w + 8, (uint32_t)r->queue_id, 4);
    put_le(w + 12, (uint64_t)qoff, 8);
    put_le(w + 20, (uint64_t)phys, 8);
    put_le(w + 28, (uint64_t)ts, 8);
    return 0;
}

/* Whether any of NOT_NORMAL occurs in props: one pass that stops at their first letters (a
 * memmem per mark cost more in its set-up than in the scan of a short text). */
static int has_mark(const uint8_t *props, int32_t len) {
    for (int32_t i = 0; i < len; i++) {
        if (props[i] != 'T' && props[i] != 'D') continue;
        for (size_t m = 0; m < sizeof NOT_NORMAL / sizeof *NOT_NORMAL; m++) {
            size_t n = strlen(NOT_NORMAL[m]);
            if ((size_t)(len - i) >= n && memcmp(props + i, NOT_NORMAL[m], n) == 0) return 1;
        }
    }
    return 0;
}

/* serve(data, born_host, max_frame[, flags]) -> None when the read's first frame is not a
 * fast send, else (bytes taken, the answers' frames joined, notes, held) of the fast sends at
 * its start, in order; notes: [(code, topic, queue_id, body size), ...] with
 * flags & SERVE_NOTES (the default), else how many sends; held is None unless they wait (then their
 * HELD_ITEMs: the answers must wait for the disk and/or a slave). born_host: the producer's
 * address as records hold it (8 or 20 bytes), None for the store's; max_frame: the reader's
 * FrameDecoder limit (a longer frame is left to it, to refuse). Puts run under the put lock,
 * taken once. Each send taken is counted where count_into said (send_counts.c), and with
 * flags & SERVE_RPC, unless they are held, their SUCCESS answers' latency. With flags &
 * SERVE_HELD_UNCUED, held sends do not cue the group commit: the caller's wait for them makes
 * them durable (a sync flush broker's; a cue there scheduled a sync the wait then replaced). */
enum { SERVE_NOTES = 1, SERVE_RPC = 2, SERVE_HELD_UNCUED = 4 };

PyObject *rmq_send_serve(SendPathObject *self, PyObject *const *args, Py_ssize_t nargs) {
    fast_state *f = &self->fast;
    if (nargs < 3 || nargs > 4 || !PyBytes_Check(args[0]) ||
        (args[1] != Py_None && !PyBytes_Check(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "serve(data: bytes, born_host: bytes | None, "
                        "max_frame: int, flags: int = SERVE_NOTES)");
        return NULL;
    }
    long long max_frame = PyLong_AsLongLong(args[2]);
    if (max_frame == -1 && PyErr_Occurred()) return NULL;
    long flags = nargs == 4 ? PyLong_AsLong(args[3]) : SERVE_NOTES;
    if (flags == -1 && PyErr_Occurred()) return NULL;
    double began = flags & SERVE_RPC && self->counts.rpc ? rmq_count_clock() : 0.0;
    Py_ssize_t v1 = 0;  /* SEND_MESSAGE's among the sends taken (the rest: V2's) */
    if (!f->table) {
        PyErr_SetString(PyExc_RuntimeError, "bind_fast was not called");
        return NULL;
    }
    const uint8_t *data = (const uint8_t *)PyBytes_AsString(args[0]);
    Py_ssize_t n = PyBytes_Size(args[0]), pos = 0, used = 0;
    const char *born;
    int32_t sysflag;
    if (rmq_born_host(args[1], &born, &sysflag) < 0) return NULL;
    const uint8_t *host = (const uint8_t *)PyBytes_AsString(f->store_host);
    Py_ssize_t host_len = PyBytes_Size(f->store_host);
    rmq_send_req *r = &self->req;
    const uint8_t *o = self->out;
    /* room any answer fits in (rmq_answer_write's: the pieces, msgId's hex, three decimals of
     * at most 21 characters), so that each is written once, not measured first */
    Py_ssize_t answer_max = 8 + 2 * host_len + 16 + 3 * 21;
    for (int i = 0; i < PIECES; i++) answer_max += PyBytes_Size(self->pieces[i]);
    PyObject *notes = NULL;
    int locked = 0, failed = 0, waits = -1;  /* -1: no send taken yet */
    Py_ssize_t taken = 0;
    while (n - pos >= 4) {
        int64_t len = get32(data + pos);
        if (len < 4 || len + 4 > max_frame || pos + 4 + len > n) break;
        const uint8_t *frame = data + pos + 4;
        if (self->parse(frame, len, PyBytes_AsString(self->cluster),
                        (int32_t)PyBytes_Size(self->cluster), PyBytes_AsString(self->skip),
                        (int32_t)PyBytes_Size(self->skip), r, self->out, self->cap))
            break;
        int64_t body_len = len - r->body_at;
        int wait = r->wait && f->durable_waits;
        if ((waits >= 0 && wait != waits) || body_len >= f->plain_limit ||
            has_mark(o + r->props_at, r->props_len))
            break;
        PyObject *topic = topic_of(f, o + r->topic_at, r->topic_len);
        if (!topic) {
            failed = 1;
            break;
        }
        PyObject *open = PyDict_GetItemWithError(f->table, topic);  /* borrowed */
        long queues = open ? PyLong_AsLong(open) : -1;
        if (r->queue_id >= queues || PyErr_Occurred()) {
            Py_DECREF(topic);
            failed = PyErr_Occurred() != NULL;
            break;
        }
        if (!locked) {  /* before the queue is looked up: acquire may let other threads run */
            PyObject *took = PyObject_CallNoArgs(f->acquire);
            Py_XDECREF(took);
            if (!took) {
                Py_DECREF(topic);
                failed = 1;
                break;
            }
            locked = 1;
        }
        /* under the lock, with the GIL held until the put: nothing drops the queue between */
        rmq_queue *q = queue_of(f, topic, r->queue_id);
        if (!q) {
            Py_DECREF(topic);
            failed = PyErr_Occurred() != NULL;
            break;
        }
        long refusing = int_attr(f->putter, names[N_REFUSING]);
        int64_t qoff = refusing ? -1 : rmq_sent_put(
            f->log, q, (const char *)frame + r->body_at, (int32_t)body_len,
            (const char *)o + r->props_at, r->props_len, r->tags_code, sysflag, r->msg_flag,
            r->born_ts, r->reconsume_times, 0, born);
        if (qoff < 0) {  /* refused, or a roll first: the Python path makes it */
            Py_DECREF(topic);
            failed = refusing < 0;
            break;
        }
        int64_t phys = f->log->last_phys, ts = f->log->last_ts;
        waits = wait;
        /* from here the record is stored: it is answered whatever else fails */
        if (index_keys(f, topic, o + r->uniq_at, r->uniq_len, o + r->keys_at, r->keys_len,
                       phys, ts) < 0)
            failed = 1;
        if (!failed && rmq_count_send(&self->counts, topic, body_len) < 0) failed = 1;
        PyObject *note = failed || !(flags & SERVE_NOTES) ? NULL
            : Py_BuildValue("(iOiL)", r->code, topic, r->queue_id, (long long)body_len);
        Py_DECREF(topic);
        v1 += r->code == 10;
        if (answers_room(f, used, answer_max) < 0 || (flags & SERVE_NOTES && !notes &&
                                                      !(notes = PyList_New(0)))) {
            Py_XDECREF(note);
            failed = 1;
            break;
        }
        used += rmq_answer_write(self->pieces, f->answers + used, host, host_len, r->opaque,
                                 phys, r->queue_id, qoff);
        pos += 4 + len;
        if (wait && hold(f, taken, r, qoff, phys, ts) < 0) failed = 1;
        taken++;
        if (flags & SERVE_NOTES && (!note || PyList_Append(notes, note) < 0)) failed = 1;
        Py_XDECREF(note);
        if (failed) break;
    }
    if (locked) {  /* what follows every append (StoreWriter._appended), once for the read */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        long waiters = pos ? int_attr(f->putter, names[N_WAITERS]) : 0;
        PyObject *hook = pos ? PyObject_GetAttr(f->putter, names[N_ON_APPEND]) : NULL;
        PyObject *woke = waiters > 0 ? PyObject_CallNoArgs(f->notify_all) : NULL;
        PyObject *called = hook && hook != Py_None ? PyObject_CallNoArgs(hook) : NULL;
        Py_XDECREF(woke);
        Py_XDECREF(called);
        Py_XDECREF(hook);
        PyObject *released = PyObject_CallNoArgs(f->release);
        Py_XDECREF(released);
        if (type) {
            PyErr_Restore(type, value, tb);
        } else if (PyErr_Occurred()) {
            failed = 1;
        }
    }
    if (pos && !failed && !(waits == 1 && flags & SERVE_HELD_UNCUED)) {
        /* put_sent's cue past the lock: puts in flight want to be durable */
        PyObject *pending = PyObject_GetAttr(f->commit, names[N_PENDING]);
        int is = pending ? PyObject_IsTrue(pending) : -1;
        Py_XDECREF(pending);
        PyObject *cued = is == 0 ? PyObject_CallMethodObjArgs(f->commit, names[N_CUE], NULL)
                                 : NULL;
        Py_XDECREF(cued);
        failed = is < 0 || (is == 0 && !cued);
    }
    if (failed) {
        /* the records stored are durable as any: their answers are lost with the connection,
         * which the reader closes on this error (the producer retries) */
        Py_XDECREF(notes);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "serve failed");
        return NULL;
    }
    if (!pos) {
        Py_XDECREF(notes);
        Py_RETURN_NONE;
    }
    if (began && waits != 1)  /* a held read's: at its answer (send_native.py) */
        rmq_count_rpc(&self->counts, v1, taken - v1, (rmq_count_clock() - began) * 1000.0);
    if (!(flags & SERVE_NOTES) && !(notes = PyLong_FromSsize_t(taken))) return NULL;
    PyObject *answers = PyBytes_FromStringAndSize((const char *)f->answers, used);
    PyObject *held = waits == 1 ? PyBytes_FromStringAndSize((const char *)f->held,
                                                              taken * HELD_ITEM)
                                : Py_NewRef(Py_None);
    PyObject *took = PyLong_FromSsize_t(pos);
    PyObject *out = answers && held && took ? PyTuple_New(4) : NULL;
    if (!out) {
        Py_XDECREF(took);
        Py_XDECREF(answers);
        Py_XDECREF(held);
        Py_DECREF(notes);
        return NULL;
    }
    /* built by hand (SetItem steals, and cannot fail on a new tuple): Py_BuildValue parsed
     * its format anew for every read */
    PyTuple_SetItem(out, 0, took);
    PyTuple_SetItem(out, 1, answers);
    PyTuple_SetItem(out, 2, notes);
    PyTuple_SetItem(out, 3, held);
    return out;
}
