/*
 * A small program against Apache ZooKeeper's C client (libzookeeper_mt),
 * built and run by tests/compat_c_client.rs. It exercises the synchronous
 * API (create/get/set/exists/children/delete), watches, zoo_multi and digest
 * authentication, and prints one line per result; the Rust test asserts on
 * those lines. It prints values only, never decides pass or fail itself.
 *
 * Usage: client HOST:PORT
 */
/* The synchronous API is only declared for the multi-threaded library. */
#define THREADED 1

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

/* Watch events seen by watch_fn, printed by the main thread in order. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int events_seen = 0;
static char events[16][256];

static void session_watcher(zhandle_t *zh, int type, int state,
                            const char *path, void *ctx) {
    (void)zh; (void)type; (void)state; (void)path; (void)ctx;
}

static void watch_fn(zhandle_t *zh, int type, int state, const char *path,
                     void *ctx) {
    (void)zh; (void)state;
    pthread_mutex_lock(&lock);
    if (events_seen < 16) {
        snprintf(events[events_seen], sizeof events[0], "event %s type=%d path=%s",
                 (const char *)ctx, type, path ? path : "");
        events_seen++;
    }
    pthread_mutex_unlock(&lock);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits (bounded) until `n` watch events were seen, then prints them all. */
static void print_events(int n) {
    double deadline = now() + 10.0;
    for (;;) {
        pthread_mutex_lock(&lock);
        int seen = events_seen;
        pthread_mutex_unlock(&lock);
        if (seen >= n || now() > deadline) break;
        usleep(10000);
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < events_seen; i++) printf("%s\n", events[i]);
    events_seen = 0;
    pthread_mutex_unlock(&lock);
}

static zhandle_t *connect_to(const char *hosts) {
    zhandle_t *zh = zookeeper_init(hosts, session_watcher, 10000, 0, 0, 0);
    if (!zh) {
        printf("init failed\n");
        exit(2);
    }
    double deadline = now() + 20.0;
    while (zoo_state(zh) != ZOO_CONNECTED_STATE) {
        if (now() > deadline) {
            printf("connect timed out\n");
            exit(2);
        }
        usleep(10000);
    }
    return zh;
}

static int auth_rc = 1;
static void auth_done(int rc, const void *data) {
    (void)data;
    pthread_mutex_lock(&lock);
    auth_rc = rc;
    pthread_mutex_unlock(&lock);
}

/* zoo_add_auth is asynchronous; wait (bounded) for its completion. */
static int add_auth(zhandle_t *zh, const char *cred) {
    pthread_mutex_lock(&lock);
    auth_rc = 1;
    pthread_mutex_unlock(&lock);
    int rc = zoo_add_auth(zh, "digest", cred, (int)strlen(cred), auth_done, 0);
    if (rc != ZOK) return rc;
    double deadline = now() + 10.0;
    for (;;) {
        pthread_mutex_lock(&lock);
        int done = auth_rc;
        pthread_mutex_unlock(&lock);
        if (done != 1) return done;
        if (now() > deadline) return 999;
        usleep(10000);
    }
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_children(zhandle_t *zh, const char *path) {
    struct String_vector kids;
    int rc = zoo_get_children(zh, path, 0, &kids);
    printf("children %s rc=%d", path, rc);
    if (rc == ZOK) {
        qsort(kids.data, kids.count, sizeof(char *), cmp_str);
        printf(" count=%d names=", kids.count);
        for (int i = 0; i < kids.count; i++)
            printf("%s%s", i ? "," : "", kids.data[i]);
        deallocate_String_vector(&kids);
    }
    printf("\n");
}

static void print_get(zhandle_t *zh, const char *path) {
    char buf[256];
    int len = sizeof buf - 1;
    struct Stat stat;
    int rc = zoo_get(zh, path, 0, buf, &len, &stat);
    if (rc == ZOK) {
        /* len is -1 for null data (behaviour 9). */
        buf[len < 0 ? 0 : len] = 0;
        printf("get %s rc=0 data=%s buflen=%d version=%d dataLength=%d\n", path, buf,
               len, stat.version, stat.dataLength);
    } else {
        printf("get %s rc=%d\n", path, rc);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = connect_to(argv[1]);
    char path[256];
    struct Stat stat;

    /* create / get / set / exists / delete */
    int rc = zoo_create(zh, "/c", "hello", 5, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
                        path, sizeof path);
    printf("create /c rc=%d path=%s\n", rc, rc == ZOK ? path : "");
    rc = zoo_create(zh, "/c", "again", 5, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, 0, 0);
    printf("create /c again rc=%d\n", rc);
    print_get(zh, "/c");
    rc = zoo_set(zh, "/c", "world", 5, 0);
    printf("set /c v0 rc=%d\n", rc);
    rc = zoo_set(zh, "/c", "stale", 5, 0);
    printf("set /c v0 again rc=%d\n", rc);
    print_get(zh, "/c");
    rc = zoo_exists(zh, "/c", 0, &stat);
    printf("exists /c rc=%d version=%d\n", rc, stat.version);
    rc = zoo_exists(zh, "/nope", 0, &stat);
    printf("exists /nope rc=%d\n", rc);
    rc = zoo_create(zh, "/c/y", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, 0, 0);
    printf("create /c/y rc=%d\n", rc);
    rc = zoo_create(zh, "/c/x", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, 0, 0);
    printf("create /c/x rc=%d\n", rc);
    rc = zoo_create(zh, "/c/s-", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL,
                    path, sizeof path);
    printf("create /c/s- rc=%d path=%s\n", rc, rc == ZOK ? path : "");
    rc = zoo_exists(zh, path, 0, &stat);
    printf("ephemeral owner is session: %d\n",
           rc == ZOK && stat.ephemeralOwner == zoo_client_id(zh)->client_id);
    print_children(zh, "/c");
    print_get(zh, "/c/x");
    rc = zoo_delete(zh, "/c", -1);
    printf("delete /c rc=%d\n", rc);
    rc = zoo_delete(zh, "/c/y", 5);
    printf("delete /c/y v5 rc=%d\n", rc);
    rc = zoo_delete(zh, "/c/y", 0);
    printf("delete /c/y v0 rc=%d\n", rc);
    print_children(zh, "/c");

    /* watches: data watch, exists watch on a missing node, child watch */
    char buf[64];
    int len = sizeof buf;
    rc = zoo_wget(zh, "/c", watch_fn, "data", buf, &len, &stat);
    printf("wget /c rc=%d\n", rc);
    rc = zoo_set(zh, "/c", "watched", 7, -1);
    printf("set /c rc=%d\n", rc);
    print_events(1);
    rc = zoo_wexists(zh, "/w", watch_fn, "exists", &stat);
    printf("wexists /w rc=%d\n", rc);
    rc = zoo_create(zh, "/w", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, 0, 0);
    printf("create /w rc=%d\n", rc);
    print_events(1);
    struct String_vector kids;
    rc = zoo_wget_children(zh, "/w", watch_fn, "child", &kids);
    if (rc == ZOK) deallocate_String_vector(&kids);
    printf("wget_children /w rc=%d\n", rc);
    rc = zoo_create(zh, "/w/k", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, 0, 0);
    printf("create /w/k rc=%d\n", rc);
    print_events(1);

    /* multi: success, then a failure that applies nothing */
    zoo_op_t ops[4];
    zoo_op_result_t results[4];
    char p1[64], p2[64];
    struct Stat set_stat;
    zoo_create_op_init(&ops[0], "/m1", "one", 3, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
                       p1, sizeof p1);
    zoo_create_op_init(&ops[1], "/m2", "two", 3, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
                       p2, sizeof p2);
    zoo_set_op_init(&ops[2], "/m1", "uno", 3, 0, &set_stat);
    zoo_check_op_init(&ops[3], "/m2", 0);
    rc = zoo_multi(zh, 4, ops, results);
    printf("multi ok rc=%d results=%d,%d,%d,%d p1=%s p2=%s set_version=%d\n", rc,
           results[0].err, results[1].err, results[2].err, results[3].err, p1, p2,
           set_stat.version);
    print_get(zh, "/m1");
    zoo_create_op_init(&ops[0], "/m3", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
                       p1, sizeof p1);
    zoo_delete_op_init(&ops[1], "/m2", -1);
    zoo_create_op_init(&ops[2], "/m1", "dup", 3, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
                       p2, sizeof p2);
    zoo_set_op_init(&ops[3], "/m1", "never", 5, -1, &set_stat);
    rc = zoo_multi(zh, 4, ops, results);
    printf("multi fail rc=%d results=%d,%d,%d,%d\n", rc, results[0].err, results[1].err,
           results[2].err, results[3].err);
    rc = zoo_exists(zh, "/m3", 0, &stat);
    printf("exists /m3 rc=%d\n", rc);
    rc = zoo_exists(zh, "/m2", 0, &stat);
    printf("exists /m2 rc=%d\n", rc);
    print_get(zh, "/m1");

    /* digest auth */
    rc = add_auth(zh, "alice:secret");
    printf("auth alice rc=%d\n", rc);
    rc = zoo_create(zh, "/sec", "gold", 4, &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT, 0, 0);
    printf("create /sec rc=%d\n", rc);
    struct ACL_vector acl;
    rc = zoo_get_acl(zh, "/sec", &acl, &stat);
    if (rc == ZOK) {
        for (int i = 0; i < acl.count; i++)
            printf("acl /sec %s:%s perms=%d\n", acl.data[i].id.scheme, acl.data[i].id.id,
                   acl.data[i].perms);
        deallocate_ACL_vector(&acl);
    } else {
        printf("acl /sec rc=%d\n", rc);
    }
    print_get(zh, "/sec");
    zhandle_t *other = connect_to(argv[1]);
    printf("other:\n");
    print_get(other, "/sec");
    rc = zoo_set(other, "/sec", "lead", 4, -1);
    printf("set /sec rc=%d\n", rc);
    rc = zoo_create(other, "/nobody", "", 0, &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT, 0, 0);
    printf("create /nobody rc=%d\n", rc);
    rc = add_auth(other, "alice:wrong");
    printf("auth wrong rc=%d\n", rc);
    print_get(other, "/sec");
    rc = add_auth(other, "alice:secret");
    printf("auth right rc=%d\n", rc);
    print_get(other, "/sec");
    zookeeper_close(other);

    /* closing the session removes its ephemeral at once */
    zookeeper_close(zh);
    zh = connect_to(argv[1]);
    print_children(zh, "/c");
    zookeeper_close(zh);
    printf("done\n");
    return 0;
}
