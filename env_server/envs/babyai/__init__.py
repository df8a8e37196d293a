"""BabyAI: minigrid's BabyAI levels as text, with macro actions planned into minigrid's primitive moves.

Tasks. An id such as `babyai/test/easy/GoToRedBall-00042` names the split, the rung, the minigrid level and the
instance index; the level seed is the split's first seed plus the index (train 0.., test 1_000_000..), so train and
test never share a grid and an id keeps its meaning whatever else moves in the ladder. Each split lists, per rung,
every level's instances interleaved (train 200 and test 40 per level: 1000 and 200 on easy and medium, 1800 and
360 on hard, less exclusions).
The episode `seed` of `reset` is unused: the task id fixes the grid and the mission, and no randomness follows.

Ladder (what makes a rung harder; mean primitive moves of minigrid's BabyAI bot in brackets):
- easy: one room, one object to reach or pick up, named by colour, type or place: GoToRedBallGrey (6),
  GoToRedBall (6), GoToObj (5), GoToLocal (5), PickupLoc (6).
- medium: doors enter the mission (reach one, open one, act next to one) and several rooms: GoToDoor (6),
  GoToObjDoor (6), OpenDoor (8), PickupDist (5), ActionObjDoor (7).
- hard: longer plans with several interactions: two doors in order (OpenTwoDoors, 14), a search through
  several small rooms (FindObjS5, 31), carrying an object next to another (PutNextLocal, 12), fetching a key to
  unlock a door (UnlockLocal, 14), picking up what lies behind it (UnlockPickup, 20), and then the 3x3-room
  levels, where the target may lie several closed doors away: GoTo (59), Synth (49), MiniBossLevel (36) and
  BossLevel (78), whose missions chain up to four instructions with `and`, `then`, `after you`.

Text. The mission, what the agent carries, each object in view ("a red ball 2 steps ahead and 1 step to the
left", doors with their state), the nearest wall ahead, left and right when in view, and objects seen earlier but
now out of view. `Observation.fields` holds the same as JSON: mission, carrying, direction, visible and remembered
objects (label, color, type, state, dx = steps right, dy = steps ahead), walls, and the feedback message.
`lexicon_words()` (colours and object types) lets the `lexicon` adapter rename "red ball" or "grey door".

Actions: see `actions.py`. An action outside the valid list gets "Nothing happens." (a known verb) or "Invalid
action ..." (anything else), `action_valid=False`, and changes nothing. A macro stops when the game ends.

Success and score. Success is minigrid's own verifier: reward 1.0 on the step that completes the mission. The
outcome's score is minigrid's shaped reward, 1 - 0.9 * primitive_steps / max_steps, on success and 0 otherwise.
Running out of minigrid's max_steps ends the episode with success False (truncated). The turn limit is the
runtime's; an episode never stops itself at 20 turns.

Oracle: minigrid's BabyAIBot, told the cells it can reach without opening a door, its moves grouped into macros
(`oracle.py`). Instances it does not win within the default 20 turns are excluded: never listed, refused by
`reset` with the reason. `excluded.py` lists them; `python -m env_server.envs.babyai.exclusions` plays the oracle
on every instance and rewrites it. Excluded, of 240 instances per level (train and test): GoToObjDoor 2, GoTo 4,
Synth 13, MiniBossLevel 40, BossLevel 56 (23%), none elsewhere; 115 of 4560 in all. They are the long chained
missions, where the bot opens doors nearest first and walks rooms it has not yet shown the agent.
"""

from env_server.envs.babyai.env import BabyAIEnv
from env_server.envs.babyai.episode import BabyAIEpisode

__all__ = ["BabyAIEnv", "BabyAIEpisode"]
