/* A Putter's table entry for one topic (putter.c's Targets type), shared with send_read.c,
 * whose serve reads a queue's target from it directly, as the Putter does, rather than
 * through get(queue_id) and the owner's waddr: two Python calls per send. */
#ifndef RMQ_TARGETS_H
#define RMQ_TARGETS_H
#include <Python.h>
#include "rmq_internal.h"

typedef struct {
    rmq_queue *q;   /* NULL: no plain target */
    PyObject *owner; /* keeps *q allocated (the ConsumeQueue); NULL with q */
} target_slot;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;         /* slots: [0] is queue_id None, [1 + i] queue id i */
    target_slot slot[1];  /* n of them (the type's itemsize) */
} TargetsObject;

#endif
