/**
 * The worker's plan of an analysis (for progress and a data-parallel split): the engine's own
 * position planner and batch rule, so a split hands out exactly the positions a single run covers.
 */
export { planAnalysis as planPositions, type AnalysisPlan } from '../engine'
