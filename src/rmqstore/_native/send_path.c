/* rmqstore._native._send: the broker's common send (send_native.py) in C-API calls, and the
 * index keys every put with keys adds (IndexService.add_keys).
 *
 * Beside the cffi module because the cost of a common send on the broker was its Python steps,
 * not its C: each cffi call drops and takes back the GIL (a thread switch when the flusher
 * waits for it), the parse's fields were unpacked from a struct and sliced out one by one, the
 * append's result read back attribute by attribute and the answer formatted in three steps.
 * SendPath.parse runs rmq_send_parse (send_parse.c, its address handed over from the cffi
 * module so the parse exists once) and builds its tuple here; put_sent appends with rmq_put
 * (likewise) and gives back the queue offset, commit-log offset and store time at once;
 * SendPath.answer writes the SUCCESS frame from the pieces of the broker's JsonFrameTemplate
 * (the one home of that frame's bytes; this only fills them in); index_keys puts a record's
 * keys with rmq_index_put (likewise) without a Python call or a bytes object per key. */
#include <stddef.h>
#include <string.h>
#include "send_path.h"
#include "rmq_pytype.h"

static int path_traverse(SendPathObject *self, visitproc visit, void *arg) {
    Py_VISIT((PyObject *)Py_TYPE((PyObject *)self));
    Py_VISIT(self->cluster);
    Py_VISIT(self->skip);
    for (int i = 0; i < PIECES; i++) Py_VISIT(self->pieces[i]);
    Py_VISIT(self->counts.topics);
    Py_VISIT(self->counts.rpc);
    return rmq_fast_traverse(&self->fast, visit, arg);
}

static int path_clear(SendPathObject *self) {
    Py_CLEAR(self->cluster);
    Py_CLEAR(self->skip);
    for (int i = 0; i < PIECES; i++) Py_CLEAR(self->pieces[i]);
    rmq_fast_clear(&self->fast);
    Py_CLEAR(self->counts.topics);
    Py_CLEAR(self->counts.rpc);
    return 0;
}

static void path_dealloc(SendPathObject *self) {
    PyMem_Free(self->out);
    self->out = NULL;
    PyMem_Free(self->fast.answers);
    self->fast.answers = NULL;
    PyMem_Free(self->fast.held);
    self->fast.held = NULL;
    rmq_heap_dealloc((PyObject *)self, (inquiry)path_clear);
}

/* SendPath(parse, cluster, skip, max_header_bytes, pieces): parse is rmq_send_parse's
 * address; cluster the broker's cluster name, skip the names
 * of the properties broker services rewrite (each followed by '\n'); pieces the five texts of
 * the SUCCESS answer's JSON header around its msgId, queueId, queueOffset and opaque. */
static PyObject *path_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"parse", "cluster", "skip", "max_header_bytes", "pieces", NULL};
    PyObject *parse_addr, *cluster, *skip, *pieces;
    Py_ssize_t max_header;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!nO!", names, &PyLong_Type,
                                     &parse_addr, &PyBytes_Type, &cluster, &PyBytes_Type, &skip,
                                     &max_header, &PyTuple_Type, &pieces))
        return NULL;
    if (PyTuple_Size(pieces) != PIECES || max_header < 0 || max_header > (1 << 24)) {
        PyErr_SetString(PyExc_ValueError, "five answer pieces and a header limit expected");
        return NULL;
    }
    for (int i = 0; i < PIECES; i++)
        if (!PyBytes_Check(PyTuple_GetItem(pieces, i))) {
            PyErr_SetString(PyExc_TypeError, "answer pieces must be bytes");
            return NULL;
        }
    SendPathObject *self = (SendPathObject *)PyType_GenericAlloc(tp, 0);
    if (!self) return NULL;
    self->parse = (parse_fn)PyLong_AsVoidPtr(parse_addr);
    /* decoded fields, then the stored properties (at most the decoded text plus CLUSTER) */
    self->cap = (int32_t)(2 * max_header + PyBytes_Size(cluster) + 64);
    self->out = PyMem_Malloc((size_t)self->cap);
    if (PyErr_Occurred() || !self->parse || !self->out) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "null address");
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(cluster);
    self->cluster = cluster;
    Py_INCREF(skip);
    self->skip = skip;
    for (int i = 0; i < PIECES; i++) {
        self->pieces[i] = PyTuple_GetItem(pieces, i);
        Py_INCREF(self->pieces[i]);
    }
    return (PyObject *)self;
}

static PyObject *ascii(const uint8_t *s, int32_t n) {
    return PyUnicode_DecodeASCII((const char *)s, n, NULL);  /* the parse took ASCII only */
}

/* parse(frame) -> why (int) | (code, opaque, topic, queue_id, flag, born_ts,
 * reconsume_times, wait, properties as stored, UNIQ_KEY or "", KEYS or "", tags_code, body):
 * SendParser.parse's answer, see rmq_send_parse. */
static PyObject *path_parse(SendPathObject *self, PyObject *frame) {
    if (!PyBytes_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "frame must be bytes");
        return NULL;
    }
    const uint8_t *f = (const uint8_t *)PyBytes_AsString(frame);
    Py_ssize_t n = PyBytes_Size(frame);
    rmq_send_req *r = &self->req;
    int32_t why = self->parse(f, n, PyBytes_AsString(self->cluster),
                              (int32_t)PyBytes_Size(self->cluster),
                              PyBytes_AsString(self->skip), (int32_t)PyBytes_Size(self->skip),
                              r, self->out, self->cap);
    if (why) return PyLong_FromLong(why);
    const uint8_t *o = self->out;
    PyObject *empty = PyUnicode_FromStringAndSize("", 0);
    if (!empty) return NULL;
    PyObject *items[13] = {
        PyLong_FromLong(r->code), PyLong_FromLong(r->opaque), ascii(o + r->topic_at,
        r->topic_len), PyLong_FromLong(r->queue_id), PyLong_FromLong(r->msg_flag),
        PyLong_FromLongLong(r->born_ts), PyLong_FromLong(r->reconsume_times),
        PyBool_FromLong(r->wait),
        PyBytes_FromStringAndSize((const char *)o + r->props_at, r->props_len),
        r->uniq_len ? ascii(o + r->uniq_at, r->uniq_len) : (Py_INCREF(empty), empty),
        r->keys_len ? ascii(o + r->keys_at, r->keys_len) : (Py_INCREF(empty), empty),
        PyLong_FromLong(r->tags_code),
        PyBytes_FromStringAndSize((const char *)f + r->body_at, n - r->body_at)};
    Py_DECREF(empty);
    PyObject *tuple = PyTuple_New(13);
    for (int i = 0; i < 13; i++) {
        if (!items[i] || !tuple) {
            for (int j = i; j < 13; j++) Py_XDECREF(items[j]);
            Py_XDECREF(tuple);
            return NULL;
        }
        PyTuple_SetItem(tuple, i, items[i]);
    }
    return tuple;
}

put_fn rmq_sent_put;              /* see send_path.h */
index_put_fn rmq_sent_index_put;

/* bind(put, index_put): rmq_put's and rmq_index_put's addresses, from the cffi module. */
static PyObject *bind(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "bind(put, index_put)");
        return NULL;
    }
    put_fn p = (put_fn)PyLong_AsVoidPtr(args[0]);
    index_put_fn ip = (index_put_fn)PyLong_AsVoidPtr(args[1]);
    if (!p || !ip) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "null address");
        return NULL;
    }
    rmq_sent_put = p;
    rmq_sent_index_put = ip;
    Py_RETURN_NONE;
}

/* index_keys(index, slots, entries, topic, keys, phys, store_ts) -> how many of keys (a list
 * of str) went into the index file mapped at address index, each as the UTF-8 of topic#key
 * (IndexService's key), before one found the file full (the caller rolls for the rest). */
static PyObject *index_keys(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (!rmq_sent_index_put) {
        PyErr_SetString(PyExc_RuntimeError, "bind was not called");
        return NULL;
    }
    if (nargs != 7 || !PyUnicode_Check(args[3]) || !PyList_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "index_keys(index, slots, entries, topic: str, "
                        "keys: list[str], phys, store_ts)");
        return NULL;
    }
    uint8_t *idx = (uint8_t *)PyLong_AsVoidPtr(args[0]);
    long slots = PyLong_AsLong(args[1]), entries = PyLong_AsLong(args[2]);
    long long phys = PyLong_AsLongLong(args[5]), ts = PyLong_AsLongLong(args[6]);
    Py_ssize_t topic_len;
    const char *topic = PyUnicode_AsUTF8AndSize(args[3], &topic_len);
    if (PyErr_Occurred() || !topic) return NULL;
    if (!idx || slots <= 0 || entries <= 0) {
        PyErr_SetString(PyExc_ValueError, "no index file");
        return NULL;
    }
    char local[512];
    Py_ssize_t n = PyList_Size(args[4]), done = 0;
    for (; done < n; done++) {
        PyObject *key = PyList_GetItem(args[4], done);
        Py_ssize_t key_len;
        const char *k = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &key_len) : NULL;
        if (!k) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "an index key is a str");
            return NULL;
        }
        size_t len = (size_t)(topic_len + 1 + key_len);
        char *buf = len <= sizeof local ? local : PyMem_Malloc(len);
        if (!buf) return PyErr_NoMemory();
        memcpy(buf, topic, (size_t)topic_len);
        buf[topic_len] = '#';
        memcpy(buf + topic_len + 1, k, (size_t)key_len);
        int32_t ok = rmq_sent_index_put(idx, (int32_t)slots, (int32_t)entries, buf, len, phys,
                                        ts);
        if (buf != local) PyMem_Free(buf);
        if (ok != 1) break;
    }
    return PyLong_FromSsize_t(done);
}

int rmq_born_host(PyObject *given, const char **host, int32_t *sysflag) {
    *host = NULL;
    *sysflag = 0;
    if (given == Py_None) return 0;
    Py_ssize_t len = PyBytes_Size(given);
    if (len != 8 && len != 20) {
        PyErr_SetString(PyExc_ValueError, "a born host is 8 or 20 bytes");
        return -1;
    }
    *host = PyBytes_AsString(given);
    *sysflag = len == 20 ? RMQ_BORNHOST_V6 : 0;
    return 0;
}

/* put_sent(log, queue, body, props, tags_code, flag, born_ts, reconsume_times, born_host) ->
 * (queue offset, commit-log offset, store time) | code < 0: rmq_put of a common send (sysflag
 * 0, or the IPv6 bit with a 16-byte born host) on the rmq_log and rmq_queue at those
 * addresses, under the caller's put lock; born_host None means the log's own. */
static PyObject *put_sent(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (!rmq_sent_put) {
        PyErr_SetString(PyExc_RuntimeError, "bind was not called");
        return NULL;
    }
    if (nargs != 9 || !PyBytes_Check(args[2]) || !PyBytes_Check(args[3]) ||
        (args[8] != Py_None && !PyBytes_Check(args[8]))) {
        PyErr_SetString(PyExc_TypeError,
                         "put(log, queue, body, props, tags_code, flag, born_ts, "
                         "reconsume_times, born_host) expects bytes body, props and host");
        return NULL;
    }
    rmq_log *log = (rmq_log *)PyLong_AsVoidPtr(args[0]);
    rmq_queue *q = (rmq_queue *)PyLong_AsVoidPtr(args[1]);
    long long tags = PyLong_AsLongLong(args[4]);
    long flag = PyLong_AsLong(args[5]);
    long long born_ts = PyLong_AsLongLong(args[6]);
    long reconsume = PyLong_AsLong(args[7]);
    if (PyErr_Occurred()) return NULL;
    if (!log || !q) {
        PyErr_SetString(PyExc_ValueError, "null address");
        return NULL;
    }
    const char *host;
    int32_t sysflag;
    if (rmq_born_host(args[8], &host, &sysflag) < 0) return NULL;
    int64_t qoff = rmq_sent_put(log, q, PyBytes_AsString(args[2]),
                                (int32_t)PyBytes_Size(args[2]),
                                PyBytes_AsString(args[3]), (int32_t)PyBytes_Size(args[3]),
                                tags, sysflag, (int32_t)flag, born_ts, (int32_t)reconsume, 0,
                                host);
    if (qoff < 0) return PyLong_FromLongLong(qoff);
    return Py_BuildValue("(LLL)", (long long)qoff, (long long)log->last_phys,
                         (long long)log->last_ts);
}

/* answer(opaque, host, phys, queue_id, queue_offset) -> the SUCCESS frame: msgId is
 * RocketMQ's offset message id, the store host's bytes then the commit-log offset, in upper
 * hex. */
static PyObject *path_answer(SendPathObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                         "answer(opaque, host, phys, queue_id, queue_offset) expects bytes host");
        return NULL;
    }
    long opaque = PyLong_AsLong(args[0]);
    long long phys = PyLong_AsLongLong(args[2]);
    long queue_id = PyLong_AsLong(args[3]);
    long long qoff = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred()) return NULL;
    const uint8_t *host = (const uint8_t *)PyBytes_AsString(args[1]);
    Py_ssize_t host_len = PyBytes_Size(args[1]);
    if (host_len > 32) {
        PyErr_SetString(PyExc_ValueError, "a store host is at most 32 bytes");
        return NULL;
    }
    Py_ssize_t len = rmq_answer_write(self->pieces, NULL, host, host_len, opaque, phys,
                                      queue_id, qoff);
    PyObject *frame = PyBytes_FromStringAndSize(NULL, len);
    if (!frame) return NULL;
    rmq_answer_write(self->pieces, (uint8_t *)PyBytes_AsString(frame), host, host_len, opaque,
                     phys, queue_id, qoff);
    return frame;
}

/* v in decimal at out (room for 21 characters): its length; snprintf's "%lld" without the
 * format parsing, which showed in the broker's profile. */
static int decimal(char *out, long long v) {
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    int len = 0;
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = tmp[--n];
    return len;
}

Py_ssize_t rmq_answer_write(PyObject *const *pieces, uint8_t *w, const uint8_t *host,
                            Py_ssize_t host_len, long opaque, long long phys, long queue_id,
                            long long qoff) {
    char id[2 * 32 + 17], qid[24], qo[24], op[24];
    static const char HEX[] = "0123456789ABCDEF";
    for (Py_ssize_t i = 0; i < host_len; i++) {
        id[2 * i] = HEX[host[i] >> 4];
        id[2 * i + 1] = HEX[host[i] & 15];
    }
    for (int i = 0; i < 16; i++)  /* the offset as 16 upper-case hex digits */
        id[2 * host_len + i] = HEX[((unsigned long long)phys >> (60 - 4 * i)) & 15];
    int id_len = (int)(2 * host_len) + 16;
    int values_len[4] = {id_len, decimal(qid, queue_id), decimal(qo, qoff),
                         decimal(op, opaque)};
    const char *values[4] = {id, qid, qo, op};
    Py_ssize_t header = 0;
    for (int i = 0; i < PIECES; i++) header += PyBytes_Size(pieces[i]);
    for (int i = 0; i < 4; i++) header += values_len[i];
    if (!w) return 8 + header;
    put32(w, (uint32_t)(4 + header));
    put32(w + 4, (uint32_t)header);  /* serialize type JSON (0) in the top byte */
    w += 8;
    for (int i = 0; i < PIECES; i++) {
        Py_ssize_t n = PyBytes_Size(pieces[i]);
        memcpy(w, PyBytes_AsString(pieces[i]), (size_t)n);
        w += n;
        if (i < 4) {
            memcpy(w, values[i], (size_t)values_len[i]);
            w += values_len[i];
        }
    }
    return 8 + header;
}

PyTypeObject *rmq_send_path_type;

static PyObject *path_bump_epoch(SendPathObject *self, PyObject *unused) {
    (void)unused;
    self->epoch++;
    Py_RETURN_NONE;
}

static PyObject *path_front_served(SendPathObject *self, void *unused) {
    (void)unused;
    return PyLong_FromLongLong(self->front_served);
}

static PyGetSetDef path_getset[] = {
    {"front_served", (getter)path_front_served, NULL, "sends served through ReadFronts", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef path_methods[] = {
    {"bump_epoch", (PyCFunction)path_bump_epoch, METH_NOARGS,
     "every ReadFront armed with this path hands its next read to Python"},
    {"parse", (PyCFunction)path_parse, METH_O, "rmq_send_parse of one frame"},
    {"answer", (PyCFunction)(void (*)(void))path_answer, METH_FASTCALL,
     "the SUCCESS frame of a stored send"},
    {"bind_fast", (PyCFunction)(void (*)(void))rmq_send_bind_fast, METH_FASTCALL,
     "what serve reads of the broker and the store"},
    {"count_into", (PyCFunction)(void (*)(void))rmq_send_count_into, METH_FASTCALL,
     "where serve counts the sends it takes"},
    {"serve", (PyCFunction)(void (*)(void))rmq_send_serve, METH_FASTCALL,
     "every common send of a read, in order, until the first that is not"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot path_slots[] = {
    {Py_tp_new, path_new},
    {Py_tp_dealloc, path_dealloc},
    {Py_tp_traverse, path_traverse},
    {Py_tp_clear, path_clear},
    {Py_tp_methods, path_methods},
    {Py_tp_getset, path_getset},
    {0, NULL},
};

static PyType_Spec path_spec = {
    "rmqstore._native._send.SendPath", sizeof(SendPathObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, path_slots,
};

static PyMethodDef methods[] = {
    RMQ_ABI_METHOD,
    {"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL,
     "rmq_put's and rmq_index_put's addresses, from the cffi module"},
    {"index_keys", (PyCFunction)(void (*)(void))index_keys, METH_FASTCALL,
     "index keys as topic#key until the file is full"},
    {"put_sent", (PyCFunction)(void (*)(void))put_sent, METH_FASTCALL,
     "rmq_put of a broker's common send"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "rmqstore._native._send", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__send(void) {
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    PyObject *path = PyType_FromSpec(&path_spec);
    if (!path || PyModule_AddObject(m, "SendPath", Py_NewRef(path)) < 0) {
        Py_XDECREF(path);
        Py_XDECREF(path);
        Py_DECREF(m);
        return NULL;
    }
    rmq_send_path_type = (PyTypeObject *)path;  /* the module's reference keeps it */
    Py_DECREF(path);
    if (rmq_front_add(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
