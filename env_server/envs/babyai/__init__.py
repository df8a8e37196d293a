"""BabyAI: minigrid's BabyAI levels as text, with macro actions planned into minigrid's primitive moves.

Tasks. An id such as `babyai/test/easy/GoToRedBall-00042` names the split, the rung, the minigrid level and the
instance index; the level seed is the split's first seed plus the index (train 0.., test 1_000_000..), so train and
test never share a grid and an id keeps its meaning whatever else moves in the ladder. Each split lists, per rung,
every level's instances interleaved (train 200 and test 40 per level: 1000 and 200 per rung, less exclusions).
The episode `seed` of `reset` is unused: the task id fixes the grid and the mission, and no randomness follows.

Ladder (what makes a rung harder; mean primitive moves of minigrid's BabyAI bot in brackets):
- easy: one room, one object to reach or pick up, named by colour, type or place: GoToRedBallGrey (6),
  GoToRedBall (6), GoToObj (5), GoToLocal (5), PickupLoc (6).
- medium: doors enter the mission (reach one, open one, act next to one) and several rooms: GoToDoor (6),
  GoToObjDoor (6), OpenDoor (8), PickupDist (5), ActionObjDoor (7).
- hard: longer plans with several interactions: two doors in order (OpenTwoDoors, 14), a search through
  several small rooms (FindObjS5, 31), carrying an object next to another (PutNextLocal, 12), fetching a key to
  unlock a door (UnlockLocal, 14), and then picking up what lies behind it (UnlockPickup, 20).
The 3x3-room levels (GoTo, Pickup, Unlock, Open, Synth, BossLevel, KeyCorridor, GoToSeq) are left out: they need
the bot to explore, which maps onto single moves, and the oracle then needs more than the default 20 turns on
about half of their instances.

Text. The mission, what the agent carries, each object in view ("a red ball 2 steps ahead and 1 step to the
left", doors with their state), the nearest wall ahead, left and right when in view, and objects seen earlier but
now out of view. `Observation.fields` holds the same as JSON: mission, carrying, direction, visible and remembered
objects (label, color, type, state, dx = steps right, dy = steps ahead), walls, and the feedback message.

Actions: see `actions.py`. An action outside the valid list gets "Nothing happens." (a known verb) or "Invalid
action ..." (anything else), `action_valid=False`, and changes nothing. A macro stops when the game ends.

Success and score. Success is minigrid's own verifier: reward 1.0 on the step that completes the mission. The
outcome's score is minigrid's shaped reward, 1 - 0.9 * primitive_steps / max_steps, on success and 0 otherwise.
Running out of minigrid's max_steps ends the episode with success False (truncated). The turn limit is the
runtime's; an episode never stops itself at 20 turns.

Oracle: minigrid's BabyAIBot, its moves grouped into macros (`oracle.py`). Instances it cannot finish within 20
turns are excluded (`EXCLUDED` in `env.py`, found by running it on every listed instance): 2 of 3600.
"""

from env_server.envs.babyai.env import BabyAIEnv
from env_server.envs.babyai.episode import BabyAIEpisode

__all__ = ["BabyAIEnv", "BabyAIEpisode"]
