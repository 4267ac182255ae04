/* Deterministic synthetic learners and achievements; see gen.h. All names
 * of certificates, majors and institutions are from the paper's examples
 * (shared/DOMAIN.md); every code (institution, course, certificate) is
 * synthetic and says so by its shape. */
#include "gen.h"

#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ PRNG */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void gen_rng_seed(struct gen_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gen_rng_next(struct gen_rng *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

uint64_t gen_rng_below(struct gen_rng *r, uint64_t n) {
  /* Reject the top partial block so every residue is equally likely. */
  uint64_t limit = -n % n;
  uint64_t x;
  do x = gen_rng_next(r);
  while (x < limit);
  return x % n;
}

/* A stream for one (purpose, a, b) under a seed. */
static void sub_rng(struct gen_rng *r, uint64_t seed, uint64_t tag,
                    uint64_t a, uint64_t b) {
  uint64_t x = seed ^ (tag * 0xD6E8FEB86659FD93ull);
  uint64_t h = splitmix64(&x);
  x = h ^ a;
  h = splitmix64(&x);
  x = h ^ b;
  gen_rng_seed(r, splitmix64(&x));
}

/* Keyed permutation of [0, n): a balanced Feistel network on the smallest
 * even bit width covering n, cycle-walking until the value falls in range
 * (fewer than 4 steps on average). */
static uint64_t permute(uint64_t key, uint64_t n, uint64_t x) {
  int bits = 2;
  while (bits < 64 && (1ull << bits) < n) bits += 2;
  int half = bits / 2;
  uint64_t mask = (1ull << half) - 1;
  do {
    uint64_t l = x >> half, r = x & mask;
    for (uint64_t round = 0; round < 4; round++) {
      uint64_t s = key ^ (round << 56) ^ r;
      uint64_t f = splitmix64(&s) & mask;
      uint64_t nl = r;
      r = l ^ f;
      l = nl;
    }
    x = (l << half) | r;
  } while (x >= n);
  return x;
}

/* ------------------------------------------------------------- tables */

/* GB/T 2260 county codes; some abolished since (310103, 310230) and
 * still on IDs. */
static const char *const sh_counties[] = {
    "310101", "310103", "310104", "310105", "310106", "310107", "310109",
    "310110", "310112", "310113", "310114", "310115", "310116", "310117",
    "310118", "310120", "310151", "310230"};
static const char *const js_counties[] = {
    "320102", "320104", "320106", "320205", "320211", "320311", "320402",
    "320505", "320506", "320602", "320703", "320802", "320902", "321002",
    "321102", "321202", "321302"};
static const char *const zj_counties[] = {
    "330102", "330105", "330106", "330108", "330203", "330212", "330302",
    "330402", "330502", "330602", "330702", "330782", "330802", "331002",
    "331102"};
static const char *const ah_counties[] = {
    "340102", "340103", "340104", "340111", "340202", "340302", "340402",
    "340503", "340602", "340702", "340802", "341002", "341102", "341202",
    "341302", "341502", "341602", "341702", "341802"};
/* Where migrants' numbers come from. */
static const char *const other_counties[] = {
    "110105", "120101", "130102", "140105", "210102", "220102", "230102",
    "350102", "360102", "370102", "410102", "420102", "430102", "440106",
    "450102", "500103", "510104", "520102", "530102", "610102", "620102",
    "650102", "659001", "810000"};

static const char *const surnames[] = {
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐",
    "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗", "郑", "梁",
    "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖",
    "田", "董", "袁", "潘", "蒋", "蔡", "余", "杜", "叶", "程", "苏",
    "魏", "吕", "丁", "沈", "姚", "陆", "顾", "钱", "欧阳", "司马"};
static const char *const given_m[] = {
    "伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "斌", "鹏",
    "辉", "华", "建", "平", "刚", "俊", "浩", "宇", "轩", "晨", "博",
    "文", "志", "海", "峰", "波", "鑫", "凯", "䶮"};
static const char *const given_f[] = {
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "婷",
    "雪", "琳", "颖", "倩", "洁", "萍", "红", "梅", "慧", "欣", "怡",
    "佳", "悦", "蕾", "晶", "璐", "月", "雅", "琪"};

struct institution {
  const char *code, *name;
};

struct major {
  const char *name;   /* Table 2 majors, and the paper's other examples */
  const char *abbr;   /* used in synthetic course codes */
  const char *courses[6];
};

static const struct major majors[] = {
    {"汽车技术服务与营销", "QC",
     {"汽车构造", "汽车电气设备", "汽车维修技术", "汽车营销实务",
      "汽车保险与理赔", NULL}},
    {"机械电子工程", "JX",
     {"电子技术", "机械制造工艺", "液压与气动技术", "数控编程与加工",
      "PLC应用技术", "机电传动控制"}},
    {"机电一体化技术", "JD",
     {"电子技术", "机械制造工艺", "电工基础", "数控加工工艺",
      "单片机原理与应用", NULL}},
    {"计算机应用技术", "JY",
     {"计算机网络基础", "网页设计与制作", "数据库应用技术", "信息安全基础",
      "C语言程序设计", NULL}},
    {"软件工程", "RG",
     {"软件测试技术", "数据结构", "面向对象程序设计", "软件工程导论",
      "信息安全技术", NULL}},
    {"电子商务", "DS",
     {"电子商务概论", "网络营销", "计算机网络基础", "电子支付与安全", NULL,
      NULL}},
    {"物流管理", "WL",
     {"物流管理基础", "仓储与配送管理", "供应链管理", "计算机网络基础", NULL,
      NULL}},
    {"人物形象设计", "XX",
     {"化妆基础", "发型设计", "美容技术", "形象设计概论", NULL, NULL}},
};

/* National vocational qualification certificates (Table 2 and the text). */
struct cert {
  const char *title, *level, *code;
};
static const struct cert certs[] = {
    {"汽车维修工", "三级", "VQ-0101"},   {"汽车维修工", "二级", "VQ-0101"},
    {"数控车工", "三级", "VQ-0201"},     {"数控车工", "二级", "VQ-0201"},
    {"数控铣工", "三级", "VQ-0202"},     {"数控铣工", "二级", "VQ-0202"},
    {"维修电工", "三级", "VQ-0301"},     {"维修电工", "二级", "VQ-0301"},
    {"信息安全师", "三级", "VQ-0401"},   {"信息安全师", "二级", "VQ-0401"},
    {"软件测试人员", "二级", "VQ-0402"}, {"网页设计制作人员", "三级", "VQ-0403"},
    {"计算机网络技术人员", "三级", "VQ-0404"},
    {"电工", "三级", "VQ-0302"},         {"美容师", "三级", "VQ-0501"},
};

/* Vocational skill-level certificates (职业技能等级证书). */
static const char *const skill_certs[] = {
    "Web前端开发", "工业机器人操作与运维", "物流管理", "电子商务数据分析",
    "汽车运用与维修", "网络系统建设与运维", "大数据应用开发（Python）"};
static const char *const skill_levels[] = {"初级", "中级", "高级"};

static const char *const nonformal[] = {
    "企业新型学徒制培训（汽车维修）", "安全生产管理人员培训",
    "岗位技能培训：数控加工", "工作经历认定：维修电工岗位",
    "社区志愿服务", "企业内训：供应链管理实务"};
static const char *const leisure[] = {"书法", "国画", "太极拳", "摄影",
                                      "合唱", "茶艺", "智能手机应用",
                                      "戏曲欣赏"};
static const char *const grades[] = {"优秀", "良好", "合格"};

struct region {
  const char *id;
  const char *const *counties;
  size_t ncounties;
  struct institution universities[4]; /* outlets */
  struct institution appraisal;       /* appraisal centre */
  struct institution branches[4];     /* district branches */
  struct institution leisure_issuers[2];
  struct institution enterprise_issuers[2];
  struct institution skill_issuer;
};

#define COUNTIES(a) a, NELEM(a)
static const struct region regions[] = {
    {"sh", COUNTIES(sh_counties),
     {{"SH-U-OU", "上海开放大学"},
      {"SH-U-SUESCE", "上海工程技术大学继续教育学院"},
      {"SH-U-SSPU", "上海第二工业大学"},
      {"SH-U-DHVC", "上海东海职业技术学院"}},
     {"SH-AC", "上海市职业技能鉴定中心"},
     {{"SH-BR-XH", "上海市终身教育学分银行徐汇分部"},
      {"SH-BR-PD", "上海市终身教育学分银行浦东分部"},
      {"SH-BR-HP", "上海市终身教育学分银行黄浦分部"},
      {"SH-BR-YP", "上海市终身教育学分银行杨浦分部"}},
     {{"SH-L-LNDX", "上海老年大学"}, {"SH-L-XHSQ", "徐汇区社区学院"}},
     {{"SH-E-0001", "浦东新区职工培训中心"},
      {"SH-E-0002", "上海某汽车服务有限公司"}},
     {"SH-X-0001", "职业技能等级评价组织（上海）"}},
    {"js", COUNTIES(js_counties),
     {{"JS-U-OU", "江苏开放大学"},
      {"JS-U-NJIVT", "南京工业职业技术大学"},
      {"JS-U-SZVC", "苏州市职业大学"},
      {"JS-U-WXVIT", "无锡职业技术学院"}},
     {"JS-AC", "江苏省职业技能鉴定中心"},
     {{"JS-BR-NJ", "江苏学分银行南京分部"},
      {"JS-BR-SZ", "江苏学分银行苏州分部"},
      {"JS-BR-WX", "江苏学分银行无锡分部"},
      {"JS-BR-NT", "江苏学分银行南通分部"}},
     {{"JS-L-LNDX", "江苏省老年大学"}, {"JS-L-NJSQ", "南京市社区大学"}},
     {{"JS-E-0001", "苏州工业园区职业技能培训中心"},
      {"JS-E-0002", "南京某机电设备有限公司"}},
     {"JS-X-0001", "职业技能等级评价组织（江苏）"}},
    {"zj", COUNTIES(zj_counties),
     {{"ZJ-U-OU", "浙江开放大学"},
      {"ZJ-U-ZIME", "浙江机电职业技术学院"},
      {"ZJ-U-HZVTC", "杭州职业技术学院"},
      {"ZJ-U-NBPT", "宁波职业技术学院"}},
     {"ZJ-AC", "浙江省职业技能鉴定中心"},
     {{"ZJ-BR-HZ", "浙江学分银行杭州分部"},
      {"ZJ-BR-NB", "浙江学分银行宁波分部"},
      {"ZJ-BR-WZ", "浙江学分银行温州分部"},
      {"ZJ-BR-JX", "浙江学分银行嘉兴分部"}},
     {{"ZJ-L-LNDX", "浙江老年大学"}, {"ZJ-L-HZSQ", "杭州市社区大学"}},
     {{"ZJ-E-0001", "宁波市职工教育中心"},
      {"ZJ-E-0002", "杭州某物流有限公司"}},
     {"ZJ-X-0001", "职业技能等级评价组织（浙江）"}},
    {"ah", COUNTIES(ah_counties),
     {{"AH-U-OU", "安徽开放大学"},
      {"AH-U-AMEVC", "安徽机电职业技术学院"},
      {"AH-U-HFTC", "合肥职业技术学院"},
      {"AH-U-WHIT", "芜湖职业技术学院"}},
     {"AH-AC", "安徽省职业技能鉴定中心"},
     {{"AH-BR-HF", "安徽学分银行合肥分部"},
      {"AH-BR-WH", "安徽学分银行芜湖分部"},
      {"AH-BR-BB", "安徽学分银行蚌埠分部"},
      {"AH-BR-AQ", "安徽学分银行安庆分部"}},
     {{"AH-L-LNDX", "安徽老年大学"}, {"AH-L-HFSQ", "合肥市社区大学"}},
     {{"AH-E-0001", "合肥市职业技能培训中心"},
      {"AH-E-0002", "芜湖某汽车零部件有限公司"}},
     {"AH-X-0001", "职业技能等级评价组织（安徽）"}},
};

static const struct region *find_region(const char *id) {
  if (!id) return NULL;
  for (size_t i = 0; i < NELEM(regions); i++)
    if (strcmp(regions[i].id, id) == 0) return &regions[i];
  return NULL;
}

int gen_region_valid(const char *region) { return find_region(region) != NULL; }

/* Each region draws from its own streams under the same seed. */
static uint64_t region_seed(uint64_t seed, const struct region *rg) {
  return seed ^ (0xA24BAED4963EE407ull * (uint64_t)(rg - regions + 1));
}

/* ------------------------------------------------------------- dates */

#define BIRTH_DAYS 17167      /* 1960-01-01 .. 2006-12-31 */
#define DAY_1960 (-3653)      /* days from 1970-01-01 to 1960-01-01 */

static int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int32_t civil_from_days(int64_t days) {
  return idcard_yyyymmdd_from_unix(days * 86400);
}

/* ----------------------------------------------------------- learners */

/* Local and migrant number spaces; migrants use a quarter as many
 * sequence numbers per day and county as needed for about 20%. */
struct idspace {
  uint64_t local, other, other_seq;
};

static struct idspace id_space(const struct region *rg) {
  struct idspace sp;
  sp.local = (uint64_t)rg->ncounties * BIRTH_DAYS * 1000;
  sp.other_seq = 1000 * rg->ncounties / (4 * NELEM(other_counties));
  if (sp.other_seq == 0) sp.other_seq = 1;
  sp.other = (uint64_t)NELEM(other_counties) * BIRTH_DAYS * sp.other_seq;
  return sp;
}

uint64_t gen_learner_capacity(const char *region) {
  const struct region *rg = find_region(region);
  if (!rg) return 0;
  struct idspace sp = id_space(rg);
  return sp.local + sp.other;
}

int gen_learner(uint64_t seed, const char *region, uint64_t index,
                struct gen_learner *out) {
  const struct region *rg = find_region(region);
  if (!rg || !out) return -1;
  struct idspace sp = id_space(rg);
  if (index >= sp.local + sp.other) return -1;
  seed = region_seed(seed, rg);
  /* A keyed permutation of the index gives distinct numbers. */
  uint64_t v = permute(seed ^ 0x1D1D1D1D1D1D1D1Dull, sp.local + sp.other,
                       index);
  const char *county;
  uint64_t day, seq;
  if (v < sp.local) {
    county = rg->counties[v % rg->ncounties];
    v /= rg->ncounties;
    day = v % BIRTH_DAYS;
    seq = v / BIRTH_DAYS;
  } else {
    v -= sp.local;
    county = other_counties[v % NELEM(other_counties)];
    v /= NELEM(other_counties);
    day = v % BIRTH_DAYS;
    seq = v / BIRTH_DAYS;
  }
  int32_t birth = civil_from_days(DAY_1960 + (int64_t)day);
  char *s = out->id_number;
  snprintf(s, IDCARD_BUFSZ, "%s%08d%03u", county, (int)birth, (unsigned)seq);
  s[17] = idcard_check_char(s);
  s[18] = '\0';

  struct gen_rng r;
  sub_rng(&r, seed, 1, index, 0);
  int male = seq % 2 == 1;
  const char *const *given = male ? given_m : given_f;
  size_t ng = male ? NELEM(given_m) : NELEM(given_f);
  const char *sur = surnames[gen_rng_below(&r, NELEM(surnames))];
  const char *g1 = given[gen_rng_below(&r, ng)];
  const char *g2 = gen_rng_below(&r, 3) ? given[gen_rng_below(&r, ng)] : "";
  snprintf(out->name, sizeof out->name, "%s%s%s", sur, g1, g2);
  return 0;
}

/* ------------------------------------------------------- achievements */

static void copy(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src);
}

#define COPY(field, src) copy(field, sizeof(field), src)

static int32_t award_date(struct gen_rng *r, const struct gen_learner *l) {
  int by = (l->id_number[6] - '0') * 1000 + (l->id_number[7] - '0') * 100 +
           (l->id_number[8] - '0') * 10 + (l->id_number[9] - '0');
  int bm = (l->id_number[10] - '0') * 10 + (l->id_number[11] - '0');
  int bd = (l->id_number[12] - '0') * 10 + (l->id_number[13] - '0');
  int64_t lo = days_from_civil(by + 16, bm, bm == 2 && bd == 29 ? 28 : bd);
  int64_t floor2000 = days_from_civil(2000, 1, 1);
  int64_t hi = days_from_civil(2025, 12, 31);
  if (lo < floor2000) lo = floor2000;
  if (lo > hi) lo = hi;
  return civil_from_days(lo + (int64_t)gen_rng_below(r, (uint64_t)(hi - lo + 1)));
}

static void set_depositor(struct csv_row *a, int role,
                          const struct institution *in) {
  a->depositor_role = role;
  COPY(a->depositor_code, in->code);
  COPY(a->depositor_name, in->name);
}

int gen_achievement(uint64_t seed, const char *region,
                    const struct gen_learner *l, uint64_t li, uint64_t j,
                    struct csv_row *a) {
  const struct region *rg = find_region(region);
  if (!rg || !l || !a) return -1;
  seed = region_seed(seed, rg);
  memset(a, 0, sizeof *a);
  COPY(a->id_number, l->id_number);
  COPY(a->name, l->name);

  /* The learner's programme: fixed per learner. */
  struct gen_rng lr;
  sub_rng(&lr, seed, 2, li, 0);
  size_t mi = (size_t)gen_rng_below(&lr, NELEM(majors));
  const struct major *mj = &majors[mi];
  /* 人物形象设计 is at 上海第二工业大学 in the paper, 机电一体化技术 also
   * at Donghai; elsewhere the open university. */
  const struct institution *uni = &rg->universities[0];
  if (mi == 7) uni = &rg->universities[2];
  else if (mi == 2 && gen_rng_below(&lr, 2)) uni = &rg->universities[3];
  else if (mi == 1 && gen_rng_below(&lr, 3) == 0) uni = &rg->universities[1];
  const struct institution *branch = &rg->branches[gen_rng_below(&lr, 4)];

  struct gen_rng r;
  sub_rng(&r, seed, 3, li, j);
  int kind;
  if (j < 5) {
    kind = (int)((li + j) % 5) + 1;
  } else {
    static const int weights[5] = {50, 15, 10, 10, 15};
    int pick = (int)gen_rng_below(&r, 100);
    kind = 1;
    for (int k = 0; k < 5 && pick >= weights[k]; k++) pick -= weights[k], kind++;
  }
  a->kind = kind;
  a->awarded_on = award_date(&r, l);

  switch (kind) {
  case CSVIMPORT_KIND_ACADEMIC_COURSE: {
    size_t nc = 0;
    while (nc < NELEM(mj->courses) && mj->courses[nc]) nc++;
    size_t ci = (size_t)gen_rng_below(&r, nc);
    COPY(a->issuer, uni->code);
    snprintf(a->code, sizeof a->code, "%s-%s-%02zu", uni->code, mj->abbr,
             ci + 1);
    COPY(a->title, mj->courses[ci]);
    a->credits_milli = 2000 + 500 * (int64_t)gen_rng_below(&r, 9); /* 2-6 */
    if (gen_rng_below(&r, 4))
      snprintf(a->score, sizeof a->score, "%u",
               (unsigned)(60 + gen_rng_below(&r, 41)));
    else
      COPY(a->score, grades[gen_rng_below(&r, NELEM(grades))]);
    set_depositor(a, CSVIMPORT_ROLE_OUTLET, uni);
    break;
  }
  case CSVIMPORT_KIND_VOCATIONAL_QUALIFICATION: {
    const struct cert *c = &certs[gen_rng_below(&r, NELEM(certs))];
    COPY(a->issuer, rg->appraisal.code);
    COPY(a->code, c->code);
    COPY(a->title, c->title);
    COPY(a->level, c->level);
    a->credits_milli = strcmp(c->level, "二级") == 0 ? 8000 : 6000;
    COPY(a->score, "合格");
    set_depositor(a, CSVIMPORT_ROLE_APPRAISAL_CENTRE, &rg->appraisal);
    break;
  }
  case CSVIMPORT_KIND_VOCATIONAL_SKILL_LEVEL: {
    size_t si = (size_t)gen_rng_below(&r, NELEM(skill_certs));
    size_t lv = (size_t)gen_rng_below(&r, NELEM(skill_levels));
    COPY(a->issuer, rg->skill_issuer.code);
    snprintf(a->code, sizeof a->code, "X-%02zu", si + 1);
    COPY(a->title, skill_certs[si]);
    COPY(a->level, skill_levels[lv]);
    a->credits_milli = 2000 * (int64_t)(lv + 1);
    COPY(a->score, "合格");
    set_depositor(a, CSVIMPORT_ROLE_OUTLET, uni);
    break;
  }
  case CSVIMPORT_KIND_NON_FORMAL: {
    size_t ni = (size_t)gen_rng_below(&r, NELEM(nonformal));
    const struct institution *ent =
        &rg->enterprise_issuers[gen_rng_below(&r, 2)];
    COPY(a->issuer, ent->code);
    snprintf(a->code, sizeof a->code, "NF-%02zu", ni + 1);
    COPY(a->title, nonformal[ni]);
    a->credits_milli = 500 + 250 * (int64_t)gen_rng_below(&r, 11); /* .5-3 */
    COPY(a->score, "合格");
    set_depositor(a, CSVIMPORT_ROLE_BRANCH, branch);
    break;
  }
  default: { /* CSVIMPORT_KIND_CULTURAL_LEISURE */
    size_t ci = (size_t)gen_rng_below(&r, NELEM(leisure));
    const struct institution *iss =
        &rg->leisure_issuers[gen_rng_below(&r, 2)];
    COPY(a->issuer, iss->code);
    snprintf(a->code, sizeof a->code, "CL-%02zu", ci + 1);
    COPY(a->title, leisure[ci]);
    a->credits_milli = 500 + 250 * (int64_t)gen_rng_below(&r, 7); /* .5-2 */
    COPY(a->score, grades[gen_rng_below(&r, NELEM(grades))]);
    set_depositor(a, CSVIMPORT_ROLE_BRANCH, branch);
    break;
  }
  }
  return 0;
}

/* ------------------------------------------------------------- output */

static int put_field(FILE *out, const char *s, int first) {
  if (!first && fputc(',', out) == EOF) return -2;
  size_t n = strlen(s);
  int quote = n && (s[0] == ' ' || s[n - 1] == ' ');
  for (size_t i = 0; i < n && !quote; i++)
    quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
  if (!quote) return fwrite(s, 1, n, out) == n ? 0 : -2;
  if (fputc('"', out) == EOF) return -2;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"' && fputc('"', out) == EOF) return -2;
    if (fputc(s[i], out) == EOF) return -2;
  }
  return fputc('"', out) == EOF ? -2 : 0;
}

static void fmt_credits(char *buf, size_t cap, int64_t milli) {
  if (milli < 0) milli = 0; /* never generated; keeps the digits sane */
  int64_t whole = milli / 1000, frac = milli % 1000;
  if (frac == 0) {
    snprintf(buf, cap, "%lld", (long long)whole);
    return;
  }
  char f[4] = {(char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
               (char)('0' + frac % 10), '\0'};
  for (int i = 2; i > 0 && f[i] == '0'; i--) f[i] = '\0';
  snprintf(buf, cap, "%lld.%s", (long long)whole, f);
}

int gen_write_row(FILE *out, const struct csv_row *a, int crlf) {
  char credits[32], date[16];
  fmt_credits(credits, sizeof credits, a->credits_milli);
  snprintf(date, sizeof date, "%04d-%02d-%02d", (int)(a->awarded_on / 10000),
           (int)(a->awarded_on / 100 % 100), (int)(a->awarded_on % 100));
  const char *f[CSVIMPORT_NCOLS] = {
      a->id_number, a->name, csvimport_kind_name(a->kind), a->issuer, a->code,
      a->title, a->level, credits, a->score, date,
      csvimport_role_name(a->depositor_role), a->depositor_code,
      a->depositor_name};
  for (int i = 0; i < CSVIMPORT_NCOLS; i++)
    if (put_field(out, f[i], i == 0) != 0) return -2;
  return fputs(crlf ? "\r\n" : "\n", out) == EOF ? -2 : 0;
}

int gen_write_csv(FILE *out, uint64_t seed, uint64_t learners,
                  uint64_t per, const char *region, unsigned flags) {
  if (!out || !gen_region_valid(region)) return -1;
  if (learners > gen_learner_capacity(region)) return -1;
  if (per && learners > UINT64_MAX / per) return -1;
  uint64_t n = learners * per;
  int crlf = (flags & GEN_CRLF) != 0;
  if ((flags & GEN_BOM) && fputs("\xEF\xBB\xBF", out) == EOF) return -2;
  for (int i = 0; i < CSVIMPORT_NCOLS; i++)
    if (put_field(out, csvimport_column_name(i), i == 0) != 0) return -2;
  if (fputs(crlf ? "\r\n" : "\n", out) == EOF) return -2;

  struct gen_learner l;
  uint64_t have = UINT64_MAX;
  uint64_t key = seed ^ 0x53485546464C45ull; /* row-order key */
  for (uint64_t k = 0; k < n; k++) {
    uint64_t idx = (flags & GEN_SORTED) ? k : permute(key, n, k);
    uint64_t li = idx / per, j = idx % per;
    if (li != have) {
      if (gen_learner(seed, region, li, &l) != 0) return -1;
      have = li;
    }
    struct csv_row a;
    if (gen_achievement(seed, region, &l, li, j, &a) != 0) return -1;
    if (gen_write_row(out, &a, crlf) != 0) return -2;
  }
  return fflush(out) == 0 ? 0 : -2;
}
