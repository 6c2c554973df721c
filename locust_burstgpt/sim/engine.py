"""The simulator's scheduling model: continuous batching over a paged KV cache, with no I/O.

Why it exists: every latency the simulator produces comes from here, so it is a pure,
deterministic state machine that tests drive in virtual time (``virtual.py``) and the server drives
in real time (``runtime.py``). One call to ``Engine.step(now)`` plans one step the way vLLM's
scheduler does (simplified):

1. Running sequences first, in admission order: a sequence still in prefill gets a chunk of its
   remaining prompt within the step's token budget; a decoding sequence gets one token. A token
   that needs a new KV block when none is free preempts the most recently admitted running
   sequence (recompute mode: its KV is dropped, it goes back to the head of the queue and later
   re-prefills prompt + tokens generated so far, usually from the prefix cache).
2. Then waiting sequences that arrived by the step's start, first come first served, while fewer
   than ``max_num_seqs`` run, the token budget lasts and the KV cache has free blocks for the
   whole prompt; the first one that does not fit blocks those behind it. Nothing is admitted in a step that preempted.
3. The step lasts ``Profile.step_time(prefill tokens, decoding sequences, their context tokens)``.
   Its outputs (one token for every decoding sequence and for every sequence whose prefill
   completed in it) are due at the step's end.

Prefix cache: full KV blocks are identified by a chain hash of their token ids (prompt and
generated tokens alike). A new sequence reuses the longest run of leading blocks already in the
cache (always leaving at least one prompt token to compute) and those tokens are reported as
cached. Blocks no running sequence uses stay cached until their space is needed (LRU eviction).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from locust_burstgpt.sim import text
from locust_burstgpt.sim.profiles import Profile


class SeqStatus(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"
    ABORTED = "aborted"


@dataclass
class SeqRequest:
    """What the engine needs of one request."""

    prompt_ids: list[int]
    max_tokens: int  # completion tokens at most
    target_tokens: int  # completion tokens this request will produce (<= max_tokens)
    arrival: float = 0.0
    word_seed: int | None = None  # completion words; default derived from the prompt
    stall_after: int | None = None  # pause generation after this many tokens ...
    stall_s: float = 0.0  # ... for this long (the stall_mid_stream fault)


@dataclass(eq=False)
class Sequence:
    """One request's state inside the engine; ``owner`` is opaque to the engine (the wire layer's)."""

    seq_id: int
    prompt_len: int
    max_tokens: int
    target_tokens: int
    arrival: float
    word_seed: int
    stall_after: int | None
    stall_s: float
    token_ids: list[int]  # prompt + generated
    owner: object = None
    status: SeqStatus = SeqStatus.WAITING
    num_generated: int = 0
    num_computed: int = 0  # tokens whose KV is in the cache
    prefill_target: int = 0  # tokens to compute before the next token can be sampled
    cached_tokens: int | None = None  # prefix-cache hit of the first admission
    block_hashes: list[int] = field(default_factory=list)  # full blocks registered in the cache
    private_blocks: int = 0  # blocks held but not (yet) registered
    hold_until: float = 0.0
    first_token_at: float | None = None
    last_token_at: float | None = None
    num_preemptions: int = 0
    prompt_block_hashes: list[int] | None = None

    @property
    def finish_reason(self) -> str:
        return "length" if self.num_generated >= self.max_tokens else "stop"

    @property
    def in_prefill(self) -> bool:
        return self.num_computed < self.prefill_target


@dataclass
class Step:
    """One planned step: its timing, its work, and what is due at its end."""

    start: float
    duration: float
    prefill_tokens: int
    decode_seqs: int
    context_tokens: int
    tokens: list[Sequence]  # sequences that got one new token at the end of this step
    finished: list[Sequence]  # sequences that completed at the end of this step
    preempted: list[Sequence]
    admitted: list[Sequence]

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass
class EngineStats:
    """Counters since start (exported as vLLM-named metrics)."""

    prompt_tokens: int = 0  # prompt tokens of admitted requests (counted once per request)
    generation_tokens: int = 0
    prefix_queries: int = 0  # prompt tokens looked up in the prefix cache
    prefix_hits: int = 0  # of which found
    preemptions: int = 0
    steps: int = 0
    finished: dict[str, int] = field(default_factory=lambda: {"stop": 0, "length": 0, "abort": 0})


class KVCache:
    """Block accounting with a hash-addressed prefix cache and LRU eviction of unused blocks."""

    def __init__(self, num_blocks: int, block_size: int, prefix_caching: bool) -> None:
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.prefix_caching = prefix_caching
        self.free = num_blocks  # blocks holding nothing
        self.refs: dict[int, int] = {}  # cached block hash -> running sequences using it
        self.evictable: OrderedDict[int, None] = OrderedDict()  # cached, unused; LRU first

    @property
    def available(self) -> int:
        return self.free + len(self.evictable)

    @property
    def used(self) -> int:
        return self.num_blocks - self.available

    def usage(self) -> float:
        """Fraction of blocks used by running sequences (vLLM's kv_cache_usage_perc, 0..1)."""
        return self.used / self.num_blocks

    def allocate(self, n: int) -> bool:
        if n > self.available:
            return False
        take = min(n, self.free)
        self.free -= take
        for _ in range(n - take):
            h, _ = self.evictable.popitem(last=False)
            del self.refs[h]
        return True

    def hits(self, hashes: list[int], limit: int) -> int:
        """Leading blocks of ``hashes`` present in the cache, at most ``limit``."""
        if not self.prefix_caching:
            return 0
        n = 0
        refs = self.refs
        for h in hashes[:limit]:
            if h not in refs:
                break
            n += 1
        return n

    def acquire(self, hashes: list[int]) -> None:
        for h in hashes:
            r = self.refs[h]
            if r == 0:
                del self.evictable[h]
            self.refs[h] = r + 1

    def register(self, h: int) -> bool:
        """Turn a just-filled private block into a cached one; False if an equal block existed
        (the private copy is then released and the cached one shared)."""
        r = self.refs.get(h)
        if r is None:
            self.refs[h] = 1
            return True
        if r == 0:
            del self.evictable[h]
        self.refs[h] = r + 1
        self.free += 1
        return False

    def release(self, hashes: list[int], private_blocks: int) -> None:
        self.free += private_blocks
        # Tail blocks first, so a shared prefix stays cached longest (as vLLM does).
        for h in reversed(hashes):
            r = self.refs[h] - 1
            self.refs[h] = r
            if r == 0:
                self.evictable[h] = None


def chain_hash(prev: int, block: list[int]) -> int:
    """Identity of a full block given everything before it."""
    return hash((prev, *block))


class Engine:
    """Continuous-batching scheduler over a paged KV cache (see the module docstring)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.kv = KVCache(profile.num_blocks, profile.block_size, profile.enable_prefix_caching)
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.stats = EngineStats()
        self._next_id = 0

    # ---- requests ---------------------------------------------------------------------------

    def add(self, req: SeqRequest, owner: object = None) -> Sequence:
        """Queue a request; it is admitted by a later ``step``."""
        if not 1 <= req.target_tokens <= req.max_tokens:
            raise ValueError(
                f"target_tokens {req.target_tokens} not in 1..max_tokens {req.max_tokens}"
            )
        if len(req.prompt_ids) < 1:
            raise ValueError("empty prompt")
        need = len(req.prompt_ids) + req.max_tokens
        if need > self.profile.max_model_len:
            raise ValueError(
                f"prompt + max_tokens = {need} > max_model_len {self.profile.max_model_len}"
            )
        self._next_id += 1
        seed = text.seed_for_prompt(req.prompt_ids) if req.word_seed is None else req.word_seed
        seq = Sequence(
            seq_id=self._next_id,
            prompt_len=len(req.prompt_ids),
            max_tokens=req.max_tokens,
            target_tokens=req.target_tokens,
            arrival=req.arrival,
            word_seed=seed,
            stall_after=req.stall_after,
            stall_s=req.stall_s,
            token_ids=list(req.prompt_ids),
            owner=owner,
        )
        self.waiting.append(seq)
        return seq

    def abort(self, seq: Sequence) -> None:
        """Drop a request (client went away); frees its KV blocks."""
        if seq.status is SeqStatus.WAITING:
            try:
                self.waiting.remove(seq)
            except ValueError:
                pass
        elif seq.status is SeqStatus.RUNNING:
            self.running.remove(seq)
            self.kv.release(seq.block_hashes, seq.private_blocks)
            seq.block_hashes, seq.private_blocks = [], 0
        else:
            return
        seq.status = SeqStatus.ABORTED
        self.stats.finished["abort"] += 1

    # ---- introspection ----------------------------------------------------------------------

    @property
    def num_running(self) -> int:
        return len(self.running)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    def has_work(self, now: float) -> bool:
        """Whether a step at ``now`` might do anything (cheap; ``step`` may still return None)."""
        if self.waiting:
            return True
        return any(s.hold_until <= now for s in self.running)

    def next_wakeup(self, now: float) -> float | None:
        """Earliest time after ``now`` a held sequence becomes runnable (None if none is held)."""
        held = [s.hold_until for s in self.running if s.hold_until > now]
        held += [s.hold_until for s in self.waiting if s.hold_until > now]
        return min(held) if held else None

    # ---- scheduling -------------------------------------------------------------------------

    def step(self, now: float) -> Step | None:
        """Plan and apply one step starting at ``now``; None if nothing can run."""
        p = self.profile
        budget = p.max_num_batched_tokens
        prefill_tokens = decode_seqs = context_tokens = 0
        producing: list[Sequence] = []  # sequences sampling a token at the end of this step
        prefill_chunks: list[tuple[Sequence, int]] = []
        preempted: list[Sequence] = []
        admitted: list[Sequence] = []

        i = 0
        running = self.running
        while i < len(running) and budget > 0:
            seq = running[i]
            if seq.hold_until > now:
                i += 1
                continue
            if seq.num_computed < seq.prefill_target:
                # Admission reserved blocks for the whole prefill and the token it samples.
                chunk = min(seq.prefill_target - seq.num_computed, budget)
                completes = seq.num_computed + chunk == seq.prefill_target
                budget -= chunk
                prefill_tokens += chunk
                prefill_chunks.append((seq, chunk))
                if completes:
                    producing.append(seq)
            else:
                if not self._ensure_block_for_next_token(seq, preempted):
                    continue  # it preempted itself; running[i] is now the next sequence
                budget -= 1
                decode_seqs += 1
                context_tokens += len(seq.token_ids)
                producing.append(seq)
            i += 1

        if not preempted:
            waiting = self.waiting
            k = 0
            while k < len(waiting) and budget > 0 and len(running) < p.max_num_seqs:
                seq = waiting[k]
                if seq.hold_until > now:  # a stalled sequence that was preempted: skip it
                    k += 1
                    continue
                if seq.arrival > now or not self._admit(seq):  # not here yet, or no KV room
                    break
                del waiting[k]
                admitted.append(seq)
                chunk = min(seq.prefill_target - seq.num_computed, budget)
                completes = seq.num_computed + chunk == seq.prefill_target
                budget -= chunk
                prefill_tokens += chunk
                prefill_chunks.append((seq, chunk))
                if completes:
                    producing.append(seq)

        if not producing and not prefill_chunks:
            return None

        duration = p.step_time(prefill_tokens, decode_seqs, context_tokens)
        end = now + duration
        for seq, chunk in prefill_chunks:
            seq.num_computed += chunk
        finished: list[Sequence] = []
        stats = self.stats
        for seq in producing:
            if seq.status is not SeqStatus.RUNNING:
                continue  # preempted later in this step's planning
            n = seq.num_generated
            if seq.num_computed == len(seq.token_ids) - 1:
                seq.num_computed += 1  # decode: the last sampled token's KV is computed now
            seq.token_ids.append(text.token_id(seq.word_seed, n))
            seq.num_generated = n + 1
            stats.generation_tokens += 1
            if seq.first_token_at is None:
                seq.first_token_at = end
            seq.last_token_at = end
            if seq.num_generated >= seq.target_tokens:
                finished.append(seq)
            elif seq.stall_after is not None and seq.num_generated == seq.stall_after:
                seq.hold_until = end + seq.stall_s
        for seq, _ in prefill_chunks:
            self._register_blocks(seq)
        for seq in producing:
            if seq.status is SeqStatus.RUNNING and not seq.in_prefill:
                self._register_blocks(seq)
        for seq in finished:
            self._finish(seq)
        stats.steps += 1
        tokens = [s for s in producing if s.status is not SeqStatus.WAITING]
        return Step(
            start=now,
            duration=duration,
            prefill_tokens=prefill_tokens,
            decode_seqs=decode_seqs,
            context_tokens=context_tokens,
            tokens=tokens,
            finished=finished,
            preempted=preempted,
            admitted=admitted,
        )

    # ---- internals --------------------------------------------------------------------------

    def _blocks_for(self, ntokens: int) -> int:
        return -(-ntokens // self.profile.block_size)

    def _held_blocks(self, seq: Sequence) -> int:
        return len(seq.block_hashes) + seq.private_blocks

    def _ensure_block_for_next_token(self, seq: Sequence, preempted: list[Sequence]) -> bool:
        """Make room for the token ``seq`` samples this step, preempting if needed."""
        need = self._blocks_for(len(seq.token_ids) + 1) - self._held_blocks(seq)
        if need <= 0:
            return True
        while not self.kv.allocate(need):
            victim = self.running[-1]
            self._preempt(victim)
            preempted.append(victim)
            if victim is seq:
                return False
        seq.private_blocks += need
        return True

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.kv.release(seq.block_hashes, seq.private_blocks)
        seq.block_hashes, seq.private_blocks = [], 0
        seq.num_computed = 0
        seq.status = SeqStatus.WAITING
        seq.num_preemptions += 1
        self.stats.preemptions += 1
        self.waiting.appendleft(seq)

    def _admit(self, seq: Sequence) -> bool:
        """Reserve KV for the sequence's prefill (prefix hits first); False if it does not fit."""
        kv = self.kv
        bs = self.profile.block_size
        target = len(seq.token_ids)
        hashes = self._full_block_hashes(seq)
        hit = kv.hits(hashes, (target - 1) // bs)
        hit_in_evictable = sum(1 for h in hashes[:hit] if kv.refs[h] == 0)
        need = self._blocks_for(target + 1) - hit  # + the token sampled when prefill completes
        if need > kv.available - hit_in_evictable:
            return False
        kv.acquire(hashes[:hit])
        kv.allocate(need)
        seq.block_hashes = hashes[:hit]
        seq.private_blocks = need
        seq.num_computed = hit * bs
        seq.prefill_target = target
        seq.status = SeqStatus.RUNNING
        self.running.append(seq)
        stats = self.stats
        stats.prefix_queries += target
        stats.prefix_hits += hit * bs
        if seq.cached_tokens is None:
            seq.cached_tokens = hit * bs
            stats.prompt_tokens += seq.prompt_len
        return True

    def _full_block_hashes(self, seq: Sequence) -> list[int]:
        """Chain hashes of the sequence's full blocks (the prompt part is computed once)."""
        bs = self.profile.block_size
        ids = seq.token_ids
        if seq.prompt_block_hashes is None:
            seq.prompt_block_hashes = list(
                _chain(ids[: seq.prompt_len - seq.prompt_len % bs], bs, 0)
            )
        hashes = list(seq.prompt_block_hashes)
        start = len(hashes) * bs
        prev = hashes[-1] if hashes else 0
        hashes.extend(_chain(ids[start : len(ids) - (len(ids) - start) % bs], bs, prev))
        return hashes

    def _register_blocks(self, seq: Sequence) -> None:
        """Publish the sequence's newly completed full blocks to the prefix cache."""
        bs = self.profile.block_size
        full = seq.num_computed // bs
        have = len(seq.block_hashes)
        if full <= have:
            return
        ids = seq.token_ids
        prev = seq.block_hashes[-1] if have else 0
        ph = seq.prompt_block_hashes
        for k in range(have, full):
            if ph is not None and k < len(ph):
                h = ph[k]
            else:
                h = chain_hash(prev, ids[k * bs : (k + 1) * bs])
            self.kv.register(h)
            seq.private_blocks -= 1
            seq.block_hashes.append(h)
            prev = h

    def _finish(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.kv.release(seq.block_hashes, seq.private_blocks)
        seq.block_hashes, seq.private_blocks = [], 0
        seq.status = SeqStatus.FINISHED
        self.stats.finished[seq.finish_reason] += 1


def _chain(ids: list[int], bs: int, prev: int) -> Iterator[int]:
    for k in range(0, len(ids), bs):
        prev = chain_hash(prev, ids[k : k + bs])
        yield prev
