/**
 * A bounded FIFO over a fixed ring of `capacity` slots: O(1) push and
 * read-by-position, O(n) shift of the n oldest items, and removal of one item
 * near the head in O(its position). Every item pushed gets a sequence number
 * (0, 1, 2… in push order), so a caller can wait until every item pushed
 * before some moment has left (`headSeq() >= mark`).
 *
 * The ring and its sequence array are allocated once: at 100,000 slots that
 * is ~0.8 MB of references plus 0.8 MB of numbers, whatever the items weigh.
 */
export interface RecordBuffer<T> {
  readonly capacity: number;
  /** Items held. */
  readonly size: number;
  /** Sequence number the next pushed item will get (= items ever pushed). */
  readonly pushed: number;
  /** Appends `item`; false (and nothing stored) when the buffer is full. */
  push(item: T): boolean;
  /** The item `i` places from the oldest (0 = oldest); throws RangeError outside 0..size-1. */
  at(i: number): T;
  /** Removes the `n` oldest items (all when n ≥ size). */
  shift(n: number): void;
  /** Removes the item `i` places from the oldest and answers it; the items before it keep their order. */
  removeAt(i: number): T;
  /** Sequence number of the oldest item, or `pushed` when empty: every item with a smaller one has left. */
  headSeq(): number;
}

export function createRecordBuffer<T>(capacity: number): RecordBuffer<T> {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  const slots = new Array<T | undefined>(capacity).fill(undefined);
  const seqs = new Float64Array(capacity);
  let head = 0;
  let size = 0;
  let pushed = 0;
  const slot = (i: number) => (head + i) % capacity;
  const check = (i: number) => {
    if (!Number.isInteger(i) || i < 0 || i >= size) throw new RangeError(`position ${i} outside 0..${size - 1}`);
  };

  return {
    capacity,
    get size() {
      return size;
    },
    get pushed() {
      return pushed;
    },
    push(item) {
      if (size === capacity) return false;
      const s = slot(size);
      slots[s] = item;
      seqs[s] = pushed++;
      size++;
      return true;
    },
    at(i) {
      check(i);
      return slots[slot(i)] as T;
    },
    shift(n) {
      const k = Math.min(Math.max(0, n), size);
      for (let i = 0; i < k; i++) slots[slot(i)] = undefined; // let the records be collected
      head = (head + k) % capacity;
      size -= k;
    },
    removeAt(i) {
      check(i);
      const item = slots[slot(i)] as T;
      // Slide the i items before it one place towards the tail, then drop the head.
      for (let k = i; k > 0; k--) {
        slots[slot(k)] = slots[slot(k - 1)];
        seqs[slot(k)] = seqs[slot(k - 1)]!;
      }
      slots[head] = undefined;
      head = (head + 1) % capacity;
      size--;
      return item;
    },
    headSeq() {
      return size === 0 ? pushed : seqs[head]!;
    },
  };
}
