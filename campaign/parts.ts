// The campaign's parts, in the order they run: the quick ones first.

import type {CampaignPart} from './case.js';
import {confirmPart} from './confirm.js';
import {crashPart} from './crash.js';
import {etcdPart} from './etcd.js';
import {faultsPart} from './faults.js';
import {floodPart} from './flood.js';
import {forgedPart} from './forged.js';
import {fuzzPart} from './fuzz.js';
import {inputPart} from './input.js';
import {keyholderPart} from './keyholder.js';
import {loadPart} from './load.js';
import {replayPart} from './replay.js';
import {scriptsPart} from './scripts.js';

export const PARTS: readonly CampaignPart[] = [
  fuzzPart,
  inputPart,
  scriptsPart,
  confirmPart,
  keyholderPart,
  forgedPart,
  replayPart,
  floodPart,
  faultsPart,
  crashPart,
  etcdPart,
  loadPart,
];
