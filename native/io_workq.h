/*
 * A FIFO of request slots shared by a pool of worker threads: the pread pool (io_posix.c) and the
 * codec pool (io_codec.c) both hand out work this way. Each take() grabs a fair share of what is
 * queued (at least one, at most the caller's batch) so one lock round trip feeds a worker for a
 * while without starving the others.
 */
#ifndef DSD_IO_WORKQ_H
#define DSD_IO_WORKQ_H

#include <pthread.h>
#include <stddef.h>

#include "io_backend.h"

struct dsd_io_workq {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct dsd_io_req *head, *tail;
    size_t qlen;
    int stop;          /* workers drain what is queued, then their take() returns 0 */
    unsigned nworkers; /* threads taking from the queue, for the fair share */
};

static inline void dsd_io_workq_init(struct dsd_io_workq *q)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->head = q->tail = NULL;
    q->qlen = 0;
    q->stop = 0;
    q->nworkers = 0;
}

static inline void dsd_io_workq_destroy(struct dsd_io_workq *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
}

/* Append n requests in order and wake as many workers as can use them. */
static inline void dsd_io_workq_push(struct dsd_io_workq *q, struct dsd_io_req **reqs, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i + 1 < n; i++)
        reqs[i]->next = reqs[i + 1];
    reqs[n - 1]->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = reqs[0];
    else
        q->head = reqs[0];
    q->tail = reqs[n - 1];
    q->qlen += n;
    if (n >= q->nworkers)
        pthread_cond_broadcast(&q->cond);
    else
        for (size_t i = 0; i < n; i++)
            pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static inline void dsd_io_workq_stop(struct dsd_io_workq *q)
{
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

/* Block until work or stop; fill batch with up to max requests. 0 means stopped and drained;
 * *stopping says the queue is stopping, so the batch is to be shut down rather than run. */
static inline size_t dsd_io_workq_take(struct dsd_io_workq *q, struct dsd_io_req **batch, size_t max, int *stopping)
{
    pthread_mutex_lock(&q->lock);
    while (q->head == NULL && !q->stop)
        pthread_cond_wait(&q->cond, &q->lock);
    *stopping = q->stop;
    size_t take = q->nworkers ? q->qlen / q->nworkers : q->qlen;
    if (take < 1)
        take = 1;
    if (take > max || q->stop)
        take = max;
    size_t n = 0;
    while (n < take && q->head) {
        batch[n++] = q->head;
        q->head = q->head->next;
    }
    if (q->head == NULL)
        q->tail = NULL;
    q->qlen -= n;
    pthread_mutex_unlock(&q->lock);
    return n;
}

#endif
