# navigator.pxd — layout of a navigator graph handle (navigator.pyx): the link store and
# the workspaces its searches own. Declarations only.

from libc.stdint cimport uint32_t, uint64_t
from betanet_navigator cimport betanet_nav_qos_t
from heap4 cimport Heap4
from linkstore cimport LinkStore
from labels cimport LabelPool, NodeSlots


cdef struct TreeWork:
    # Dijkstra workspace, n each; the heap's pos doubles as the Martins node queue's
    uint32_t cap
    double *dist
    uint64_t *pred_e        # tree edge into each node
    uint32_t *pred_n        # tail of that edge
    uint32_t *order         # settle order
    Heap4 heap


cdef struct Frontier:
    # the trimmed output per node (CSR) and what it was computed for
    size_t off_cap
    uint32_t *off           # n + 1
    size_t lab_cap
    uint32_t *lab
    int have
    uint64_t gen
    uint32_t src
    betanet_nav_qos_t qos


cdef struct NavGraph:
    LinkStore links
    uint64_t generation     # bumped by every change; stale results read as E_STATE
    TreeWork tree
    LabelPool labels
    NodeSlots slots
    Frontier out
