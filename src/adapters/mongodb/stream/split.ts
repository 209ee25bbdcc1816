/**
 * Reassembly of events split by `$changeStreamSplitLargeEvent` (MongoDB 7.0, 6.0.9): an event over 16 MB arrives as
 * `of` consecutive fragments, each with `splitEvent: { fragment, of }` (1-based) and its own resume token `_id`, the
 * top-level fields spread over them. Resuming from the last fragment's token starts at the next event, so the whole
 * event's position is the last fragment's token; Ferry never checkpoints a fragment's token.
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation/changeStreamSplitLargeEvent/
 */
import type { Document } from 'bson';
import { FerryError } from '../../../core/errors.js';

export class SplitEventAssembler {
  private parts: Document[] = [];

  /** True while fragments of an event are held (the position must not move past its start). */
  get pending(): boolean {
    return this.parts.length > 0;
  }

  /** The event itself, the whole event once its last fragment arrives, or undefined while fragments are missing. */
  push(event: Document): Document | undefined {
    const split = event.splitEvent as { fragment?: unknown; of?: unknown } | undefined;
    if (!split) {
      if (this.parts.length) throw new FerryError(`a change stream event arrived after fragment ${this.parts.length} of a split event whose other fragments never came`);
      return event;
    }
    const fragment = Number(split.fragment);
    const of = Number(split.of);
    if (fragment !== this.parts.length + 1) {
      throw new FerryError(`split change stream event out of order: fragment ${fragment} of ${of} after ${this.parts.length} fragments`);
    }
    this.parts.push(event);
    if (fragment < of) return undefined;
    const whole: Document = { _id: event._id };
    for (const p of this.parts) {
      for (const [k, v] of Object.entries(p)) if (k !== 'splitEvent' && k !== '_id') whole[k] = v;
    }
    this.parts = [];
    return whole;
  }
}
