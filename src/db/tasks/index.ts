/** Task state: one file per state change (each returns its statements and the decoder of its results), and reads. */

export { type AdmissionGrant, type AdmissionStateRow, claimAdmissions, readAdmissionState } from "./admit";
export { bumpGeneration } from "./bump-generation";
export { type ClaimedTask, claimTasks } from "./claim";
export { finishTasks, type TerminalOutcome } from "./finish";
export { type ChildTask, insertChildTasks, type NewChildTask } from "./insert-children";
export { insertRootSlice, type NewRootTask } from "./insert-roots";
export * from "./queries";
export { type RedriveCandidate, redriveTasks } from "./redrive";
export { type DeliveryGuard, failureMark, type TaskRef } from "./refs";
export { type RetryNote, requeueTasks } from "./requeue";
export { takeStalledTasks } from "./take-stalled";
export { markPending, markQueued } from "./waiting";
