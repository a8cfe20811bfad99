"""Imported once by the fork server of ``fault_kills`` (not by the test process): one torch
thread (so that no OpenMP pool exists when the server forks, and every job sums alike), the
default tokenizer and the tiny Llama, which every forked job inherits; and tqdm's lock, a
thread lock: its default multiprocessing lock would be a semaphore made in each job, which a
SIGKILL leaves for the resource tracker to report at exit."""

import threading

import torch
from tqdm import tqdm as plain_tqdm
from tqdm.auto import tqdm

torch.set_num_threads(1)
for bar in {plain_tqdm, tqdm}:
    bar.set_lock(threading.RLock())

import fault_kills  # noqa: E402  (after the thread count)

TOK = fault_kills.tokenizer()
MODEL = fault_kills.tiny_llama(TOK)
