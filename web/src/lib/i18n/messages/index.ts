// Every page's words, merged. Each area keeps its own file; keys are prefixed by area.
import * as admin from "./admin";
import * as auth from "./auth";
import * as buy from "./buy";
import * as common from "./common";
import * as create from "./create";
import * as credits from "./credits";
import * as dashboard from "./dashboard";
import * as history from "./history";
import * as keys from "./keys";
import * as profile from "./profile";
import * as redeem from "./redeem";
import * as task from "./task";
import * as terms from "./terms";
import * as webhooks from "./webhooks";

const areas = [common, auth, dashboard, create, task, terms, history, credits, buy, redeem, keys, webhooks, profile, admin];

export type MessageKey =
  | keyof typeof common.en
  | keyof typeof auth.en
  | keyof typeof dashboard.en
  | keyof typeof create.en
  | keyof typeof task.en
  | keyof typeof terms.en
  | keyof typeof history.en
  | keyof typeof credits.en
  | keyof typeof buy.en
  | keyof typeof redeem.en
  | keyof typeof keys.en
  | keyof typeof webhooks.en
  | keyof typeof profile.en
  | keyof typeof admin.en;

export const messages = {
  en: Object.assign({}, ...areas.map((area) => area.en)) as Record<MessageKey, string>,
  zh: Object.assign({}, ...areas.map((area) => area.zh)) as Record<MessageKey, string>,
};
